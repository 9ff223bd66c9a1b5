"""NetSuite emulator: one account served over SuiteTalk SOAP 2025.2 and the REST Record API v1.

Both protocols read and write the same records (`<sandbox root>/netsuite.sqlite`), as on a real
account, so a publisher can switch transport without losing track of what it wrote.

- REST: `POST /services/rest/auth/oauth2/v1/token` (OAuth 2.0 client credentials with a JWT
  `client_assertion` signed PS256/RS256 by the integration's certificate key; `kid` = the
  certificate id; 60-minute bearer tokens), `GET|POST /services/rest/record/v1/{type}`,
  `GET|PUT|PATCH /services/rest/record/v1/{type}/{id | eid:externalId}`; a write answers
  204 No Content with `Location: …/record/v1/{type}/{internalId}`.
- SOAP: `POST /services/NetSuitePort_2025_2`, `SOAPAction: upsertList | addList | getList`, the
  Token-Based Authentication `tokenPassport` checked (account, consumer key, token, nonce 6–64
  alphanumerics never reused, timestamp within 5 minutes, HMAC-SHA256 signature); one
  `writeResponse` / `readResponse` per record with its own status; ≤ 100 records per upsertList,
  ≤ 200 per addList, ≤ 1000 per getList.
- Validation in NetSuite's terms: required fields (entity, tranDate, subsidiary, currency, item
  lines with item, quantity > 0, amount, taxCode), references that must exist
  (`INVALID_KEY_OR_REF`), enums (`orderStatus`), externalId characters, a duplicate externalId on
  add (`DUP_RCRD`), a document number (`tranId`) already used by another record of the type.
  REST errors are RFC 9110 problem documents with `o:errorDetails`; SOAP per-record errors are
  `status isSuccess="false"` with `statusDetail` code and message.
- Governance: concurrent requests per account (`concurrency_limit`, default 5 = Standard tier),
  shared by SOAP and REST; over it REST answers 429 and SOAP an
  `ExceededConcurrentRequestLimitFault` (`WS_REQUEST_BLOCKED`).
"""
from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree as ET

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.client import dumps
from finance_pipeline.http.ratelimit import ConcurrencyLimiter
from finance_pipeline.platforms.netsuite import wire
from finance_pipeline.platforms.netsuite.wire import REST_RECORD, SOAP_PATH, TOKEN_PATH, q
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.sqlite_state import SqliteState
from finance_pipeline.sandbox.store import Sandbox

ACCOUNT_ID = "1234567_SB1"
TOKEN_TTL_S = 3600
CENT = Decimal("0.01")
SUBSIDIARIES = {"1": "Curtain Wholesale Ltd (UK)"}
CURRENCIES = {"1": "GBP", "2": "USD", "3": "CAD", "4": "EUR", "5": "AUD"}
ITEMS = {"310": "Trade goods (fabric, curtains, tracks, poles, blinds)", "311": "Delivery"}
TAX_CODES = {"5": ("S-GB", Decimal(20)), "6": ("R-GB", Decimal(5)), "7": ("Z-GB", Decimal(0)),
             "8": ("EC-GB", Decimal(0)), "9": ("EXP-GB", Decimal(0))}
ORDER_STATUSES = {"A": "Pending Approval", "B": "Pending Fulfillment"}
LIST_LIMITS = {"upsertList": 100, "addList": 200, "getList": 1000}
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_\-]{1,255}$")
_NONCE = re.compile(r"^[A-Za-z0-9]{6,64}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, seen_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS records (internal_id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL,
    external_id TEXT, tran_id TEXT, doc TEXT NOT NULL, created_at REAL NOT NULL, modified_at REAL NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS records_eid ON records (type, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS records_tranid ON records (type, tran_id);
"""


class RecordError(ValueError):
    def __init__(self, code: str, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.path = path


def _loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


def _dec(doc: dict, name: str, path: str, required: bool = False) -> Decimal | None:
    value = doc.get(name)
    if value is None:
        if required:
            raise RecordError("USER_ERROR", f"Please enter value(s) for: {name}", path)
        return None
    if isinstance(value, bool):
        raise RecordError("INVALID_FLD_VALUE", f"Invalid {name} value {value}", path)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise RecordError("INVALID_FLD_VALUE", f"You have entered an invalid field value {value} for the "
                          f"following field: {name}", path) from None


def _ref(doc: dict, name: str, known: dict | set, required: bool, path: str | None = None) -> str | None:
    value = doc.get(name)
    if value is None:
        if required:
            raise RecordError("USER_ERROR", f"Please enter value(s) for: {name}", path or name)
        return None
    ref = value.get("id") if isinstance(value, dict) else None
    if ref is None or str(ref) not in known:
        raise RecordError("INVALID_KEY_OR_REF", f"Invalid {name} reference key {ref}.", path or name)
    return str(ref)


def _date(doc: dict, name: str, required: bool) -> str | None:
    value = doc.get(name)
    if value is None:
        if required:
            raise RecordError("USER_ERROR", f"Please enter value(s) for: {name}", name)
        return None
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise RecordError("INVALID_FLD_VALUE", f"Invalid date value {value} for field {name}", name) from None


class NetSuiteStore:
    def __init__(self, state: SqliteState) -> None:
        self.state = state

    # -- validation and totals ------------------------------------------------------------------
    def _customers(self, con) -> set[str]:  # noqa: ANN001
        return {str(r[0]) for r in con.execute("SELECT internal_id FROM records WHERE type = 'customer'")}

    def build(self, con, record_type: str, doc: dict) -> dict:  # noqa: ANN001
        """The record as stored (validated, totals computed), or RecordError."""
        if record_type == "customer":
            name = (doc.get("companyName") or "").strip()
            if not name:
                raise RecordError("USER_ERROR", "Please enter value(s) for: Company Name", "companyName")
            email = doc.get("email")
            if email and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", str(email)):
                raise RecordError("INVALID_FLD_VALUE", f"Invalid email address {email}", "email")
            out = {"companyName": name, "email": email,
                   "subsidiary": {"id": _ref(doc, "subsidiary", SUBSIDIARIES, True)}}
            currency = _ref(doc, "currency", CURRENCIES, False)
            if currency:
                out["currency"] = {"id": currency}
            return out
        out: dict[str, Any] = {
            "entity": {"id": _ref(doc, "entity", self._customers(con), True)},
            "tranDate": _date(doc, "tranDate", True),
            "subsidiary": {"id": _ref(doc, "subsidiary", SUBSIDIARIES, True)},
            "currency": {"id": _ref(doc, "currency", CURRENCIES, True)},
        }
        for name in ("tranId", "otherRefNum", "memo"):
            if doc.get(name) is not None:
                out[name] = str(doc[name])
        if record_type == "invoice":
            due = _date(doc, "dueDate", False)
            if due:
                out["dueDate"] = due
        if record_type == "salesOrder":
            status = doc.get("orderStatus", "B")
            if status not in ORDER_STATUSES:
                raise RecordError("INVALID_FLD_VALUE", f"Invalid orderStatus value {status} "
                                  f"(valid: {', '.join(ORDER_STATUSES)})", "orderStatus")
            out["orderStatus"] = status
        lines = ((doc.get("item") or {}).get("items")) if isinstance(doc.get("item"), dict) else None
        if not lines:
            raise RecordError("USER_ERROR", "You must enter at least one line item for this transaction.", "item")
        items, subtotal, tax_total = [], Decimal(0), Decimal(0)
        for i, line in enumerate(lines):
            path = f"item.items[{i}]"
            item = _ref(line, "item", ITEMS, True, f"{path}.item")
            quantity = _dec(line, "quantity", f"{path}.quantity", required=True)
            if quantity is None or quantity <= 0:
                raise RecordError("INVALID_FLD_VALUE", f"Invalid quantity {quantity}: must be greater than 0",
                                  f"{path}.quantity")
            rate = _dec(line, "rate", f"{path}.rate")
            amount = _dec(line, "amount", f"{path}.amount")
            if amount is None:
                if rate is None:
                    raise RecordError("USER_ERROR", "Please enter value(s) for: Amount", f"{path}.amount")
                amount = (quantity * rate).quantize(CENT, ROUND_HALF_UP)
            if rate is None:
                rate = amount / quantity
            tax_code = _ref(line, "taxCode", TAX_CODES, True, f"{path}.taxCode")
            tax = _dec(line, "tax1Amt", f"{path}.tax1Amt")
            if tax is None:
                tax = (amount * TAX_CODES[tax_code][1] / 100).quantize(CENT, ROUND_HALF_UP)
            items.append({"line": i + 1, "item": {"id": item}, "description": line.get("description"),
                          "quantity": quantity, "rate": rate, "amount": amount.quantize(CENT),
                          "taxCode": {"id": tax_code}, "tax1Amt": tax.quantize(CENT)})
            subtotal += amount
            tax_total += tax
        out["item"] = {"items": items}
        out["subtotal"] = subtotal.quantize(CENT)
        out["taxTotal"] = tax_total.quantize(CENT)
        out["total"] = (subtotal + tax_total).quantize(CENT)
        return out

    # -- writes ---------------------------------------------------------------------------------------
    def write(self, record_type: str, doc: dict, *, mode: str, external_id: str | None = None,
              internal_id: str | None = None) -> tuple[int, bool]:
        """mode: 'add' (fails on an existing externalId), 'upsert' (by externalId), 'update' (by id).
        Returns (internal id, created)."""
        if record_type not in wire.RECORD_TYPES:
            raise RecordError("INVALID_RCRD_TYPE", f"Record type {record_type} is not supported")
        external_id = external_id or doc.get("externalId")
        if external_id is not None and not _EXTERNAL_ID.match(str(external_id)):
            raise RecordError("INVALID_KEY_OR_REF", f"Invalid externalId {external_id!r}: use letters, digits, "
                              "_ and -", "externalId")
        if mode == "upsert" and not external_id:
            raise RecordError("USER_ERROR", "upsert needs an externalId", "externalId")
        now = time.time()
        with self.state.tx() as con:
            if internal_id is not None:
                existing = con.execute("SELECT internal_id, doc FROM records WHERE type = ? AND internal_id = ?",
                                       [record_type, int(internal_id)]).fetchone()
                if existing is None:
                    raise RecordError("NONEXISTENT_ID", f"Record {record_type} {internal_id} does not exist")
            else:
                existing = con.execute("SELECT internal_id, doc FROM records WHERE type = ? AND external_id = ?",
                                       [record_type, external_id]).fetchone() if external_id else None
            if existing is not None and mode == "add":
                raise RecordError("DUP_RCRD", "This record already exists (a record with the same externalId "
                                  f"{external_id})")
            if existing is not None and mode == "patch":
                merged = {**_loads(existing[1]), **{k: v for k, v in doc.items() if v is not None}}
                doc = merged
            built = self.build(con, record_type, doc)
            tran_id = built.get("tranId")
            if tran_id:
                clash = con.execute("SELECT internal_id FROM records WHERE type = ? AND tran_id = ? AND internal_id "
                                    "IS NOT ?", [record_type, tran_id, existing[0] if existing else None]).fetchone()
                if clash:
                    raise RecordError("USER_ERROR", f"The transaction number {tran_id} is already used by "
                                      f"{record_type} {clash[0]}. Enter a unique number.", "tranId")
            if existing is not None:
                built_ext = external_id if internal_id is None else _loads(existing[1]).get("externalId")
                built["externalId"] = built_ext
                con.execute("UPDATE records SET doc = ?, tran_id = ?, modified_at = ? WHERE internal_id = ?",
                            [dumps(built).decode(), tran_id, now, existing[0]])
                SqliteState.bump(con, f"{record_type}_updated")
                return existing[0], False
            built["externalId"] = external_id
            cur = con.execute("INSERT INTO records (type, external_id, tran_id, doc, created_at, modified_at) "
                              "VALUES (?, ?, ?, ?, ?, ?)", [record_type, external_id, tran_id,
                                                             dumps(built).decode(), now, now])
            SqliteState.bump(con, f"{record_type}_created")
            return cur.lastrowid, True

    def get(self, record_type: str, *, internal_id: str | None = None, external_id: str | None = None
            ) -> dict | None:
        con = self.state.read()
        if internal_id is not None:
            if not str(internal_id).isdigit():
                return None
            row = con.execute("SELECT internal_id, doc, modified_at FROM records WHERE type = ? AND internal_id = ?",
                              [record_type, int(internal_id)]).fetchone()
        else:
            row = con.execute("SELECT internal_id, doc, modified_at FROM records WHERE type = ? AND external_id = ?",
                              [record_type, external_id]).fetchone()
        if row is None:
            return None
        return {"id": str(row[0]), **_loads(row[1]), "lastModifiedDate": _iso(row[2])}

    def all(self, record_type: str) -> list[dict]:
        return [{"id": str(r[0]), **_loads(r[1])} for r in self.state.read().execute(
            "SELECT internal_id, doc FROM records WHERE type = ? ORDER BY internal_id", [record_type])]


def _iso(epoch: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _problem(status: int, code: str, detail: str, path: str | None = None) -> Response:
    item: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    if path:
        item["o:errorPath"] = path
    titles = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
              429: "Too Many Requests", 500: "Internal Server Error"}
    return json_response({"type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1",
                          "title": titles.get(status, "Error"), "status": status, "o:errorDetails": [item]}, status,
                         {"Content-Type": "application/vnd.oracle.resource+json; type=error"})


def _soap(body: ET.Element, status: int = 200) -> Response:
    env = ET.Element(q("soapenv", "Envelope"))
    ET.SubElement(env, q("soapenv", "Header"))
    ET.SubElement(env, q("soapenv", "Body")).append(body)
    return Response(ET.tostring(env, xml_declaration=True, encoding="utf-8"), status,
                    media_type="text/xml; charset=utf-8")


def soap_fault(fault: str, code: str, message: str) -> Response:
    el = ET.Element(q("soapenv", "Fault"))
    ET.SubElement(el, "faultcode").text = "soapenv:Server.userException"
    ET.SubElement(el, "faultstring").text = message
    detail = ET.SubElement(ET.SubElement(el, "detail"), q("faults", fault))
    ET.SubElement(detail, q("faults", "code")).text = code
    ET.SubElement(detail, q("faults", "message")).text = message
    return _soap(el, 500)


def _status(parent: ET.Element, ok: bool, code: str = "", message: str = "") -> None:
    status = ET.SubElement(parent, q("core", "status"), {"isSuccess": "true" if ok else "false"})
    if not ok:
        detail = ET.SubElement(status, q("core", "statusDetail"), {"type": "ERROR"})
        ET.SubElement(detail, q("core", "code")).text = code
        ET.SubElement(detail, q("core", "message")).text = message


class NetSuiteEmulator(Emulator):
    name = "netsuite"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.state = SqliteState(sandbox.root / "netsuite.sqlite", SCHEMA)
        self.store = NetSuiteStore(self.state)
        self._init_meta()
        self.concurrency_limit = 5
        self._inflight = ConcurrencyLimiter(self.concurrency_limit)
        self._peak_lock = threading.Lock()
        self._active = 0
        self.peak_concurrency = 0
        self.write_delay_s = 0.0  # tests: hold each write's answer this long after it committed

    def _init_meta(self) -> None:
        read = self.state.read()
        if read.execute("SELECT COUNT(*) FROM meta").fetchone()[0] == 0:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import rsa

            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
            public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
            values = {"client_id": secrets.token_hex(32), "certificate_id": secrets.token_urlsafe(30),
                      "private_key": pem, "public_key": public, "consumer_key": secrets.token_hex(32),
                      "consumer_secret": secrets.token_hex(32), "token_id": secrets.token_hex(32),
                      "token_secret": secrets.token_hex(32)}
            with self.state.tx() as con:
                con.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", list(values.items()))
        self.meta = dict(read.execute("SELECT key, value FROM meta").fetchall())

    # -- what clients and tests use -----------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        m = self.meta
        return {"account_id": ACCOUNT_ID, "rest_url": self.base_url, "soap_url": f"{self.base_url}{SOAP_PATH}",
                "token_url": f"{self.base_url}{TOKEN_PATH}", "client_id": m["client_id"],
                "certificate_id": m["certificate_id"], "private_key": m["private_key"],
                "consumer_key": m["consumer_key"], "consumer_secret": m["consumer_secret"],
                "token_id": m["token_id"], "token_secret": m["token_secret"],
                "subsidiary": "1", "item_goods": "310", "item_shipping": "311",
                "currency_ids": ",".join(f"{c}:{i}" for i, c in CURRENCIES.items()),
                "taxcode_ids": "standard:5,reduced:6,zero:7,eu_reverse_charge:8,export:9"}

    def records(self, record_type: str) -> list[dict]:
        return self.store.all(record_type)

    def set_concurrency_limit(self, limit: int) -> None:
        self.concurrency_limit = limit
        self._inflight = ConcurrencyLimiter(limit)

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(self.state.counters())
        out["peak_concurrency"] = self.peak_concurrency
        for t in wire.RECORD_TYPES:
            out[f"{t}_count"] = self.state.read().execute("SELECT COUNT(*) FROM records WHERE type = ?",
                                                          [t]).fetchone()[0]
        return out

    def routes(self) -> list[Route]:
        return [
            Route(TOKEN_PATH, self._token, methods=["POST"]),
            Route(f"{REST_RECORD}/{{type}}", self._collection, methods=["GET", "POST"]),
            Route(f"{REST_RECORD}/{{type}}/{{ref}}", self._record, methods=["GET", "PUT", "PATCH"]),
            Route(SOAP_PATH, self._soap, methods=["POST"]),
        ]

    def faults_apply(self, method: str, path: str) -> bool:
        return path != TOKEN_PATH

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return _problem(429, "CONCURRENCY_LIMIT_EXCEEDED", "injected fault")
        return _problem(status, "UNEXPECTED_ERROR", "injected fault")

    # -- governance -----------------------------------------------------------------------------------
    def _enter(self) -> bool:
        if self.config.enforce_rate_limits and self._inflight.try_acquire() > 0:
            self.counters["over_limit"] += 1
            return False
        if not self.config.enforce_rate_limits:
            self._inflight.try_acquire()
        with self._peak_lock:
            self._active += 1
            self.peak_concurrency = max(self.peak_concurrency, self._active)
        return True

    def _leave(self) -> None:
        with self._peak_lock:
            self._active -= 1
        self._inflight.release()

    # -- OAuth 2.0 client credentials (M2M) ------------------------------------------------------------
    async def _token(self, request: Request) -> Response:
        import jwt

        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return json_response({"error": "invalid_request", "error_description": "client_assertion_type"}, 400)
        assertion = form.get("client_assertion") or ""
        try:
            header = jwt.get_unverified_header(assertion)
            if header.get("kid") != self.meta["certificate_id"]:
                return json_response({"error": "invalid_client", "error_description": "unknown certificate (kid)"}, 401)
            if header.get("alg") not in ("PS256", "RS256", "PS384", "RS384", "PS512", "RS512"):
                return json_response({"error": "invalid_request", "error_description": "unsupported alg"}, 400)
            claims = jwt.decode(assertion, self.meta["public_key"], algorithms=[header["alg"]],
                                audience=f"{self.base_url}{TOKEN_PATH}", options={"require": ["exp", "iat", "iss"]})
        except jwt.PyJWTError as exc:
            return json_response({"error": "invalid_grant", "error_description": str(exc)}, 400)
        if claims.get("iss") != self.meta["client_id"]:
            return json_response({"error": "invalid_client"}, 401)
        scope = claims.get("scope")
        scopes = scope if isinstance(scope, list) else str(scope or "").replace(",", " ").split()
        if "rest_webservices" not in scopes:
            return json_response({"error": "invalid_scope"}, 400)
        if claims["exp"] - claims["iat"] > 3600:
            return json_response({"error": "invalid_grant", "error_description": "exp more than 60 min after iat"},
                                 400)
        token = secrets.token_urlsafe(40)
        with self.state.tx() as con:
            con.execute("INSERT INTO tokens VALUES (?, ?)", [token, time.time() + TOKEN_TTL_S])
            SqliteState.bump(con, "tokens_issued")
        return json_response({"access_token": token, "expires_in": str(TOKEN_TTL_S), "token_type": "bearer"})

    def _bearer(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        row = self.state.read().execute("SELECT expires_at FROM tokens WHERE token = ?", [token.strip()]).fetchone()
        if scheme.lower() != "bearer" or row is None or row[0] < time.time():
            return _problem(401, "INVALID_LOGIN", "Invalid login attempt. For more details, see the Login Audit "
                            "Trail in the NetSuite UI at Setup > Users/Roles > User Management > View Login Audit "
                            "Trail.")
        return None

    # -- REST ---------------------------------------------------------------------------------------------
    async def _collection(self, request: Request) -> Response:
        if (denied := self._bearer(request)) is not None:
            return denied
        record_type = request.path_params["type"]
        if record_type not in wire.RECORD_TYPES:
            return _problem(404, "NONEXISTENT_ID", f"Record type '{record_type}' was not found.")
        if not self._enter():
            return _problem(429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded. Request blocked.")
        try:
            if request.method == "POST":
                return await self._write(request, record_type, "add", None, None)
            limit = max(1, min(1000, int(request.query_params.get("limit", "1000"))))
            offset = max(0, int(request.query_params.get("offset", "0")))
            ids = [r[0] for r in self.state.read().execute(
                "SELECT internal_id FROM records WHERE type = ? ORDER BY internal_id", [record_type])]
            page = ids[offset:offset + limit]
            base = f"{self.base_url}{REST_RECORD}/{record_type}"
            links = [{"rel": "self", "href": f"{base}?limit={limit}&offset={offset}"}]
            if offset + limit < len(ids):
                links.append({"rel": "next", "href": f"{base}?limit={limit}&offset={offset + limit}"})
            return json_response({"links": links, "count": len(page), "hasMore": offset + limit < len(ids),
                                  "items": [{"links": [{"rel": "self", "href": f"{base}/{i}"}], "id": str(i)}
                                            for i in page],
                                  "offset": offset, "totalResults": len(ids)})
        finally:
            self._leave()

    @staticmethod
    def _parse_ref(ref: str) -> tuple[str | None, str | None]:
        if ref.startswith("eid:"):
            return None, ref[4:]
        return ref, None

    async def _record(self, request: Request) -> Response:
        if (denied := self._bearer(request)) is not None:
            return denied
        record_type = request.path_params["type"]
        if record_type not in wire.RECORD_TYPES:
            return _problem(404, "NONEXISTENT_ID", f"Record type '{record_type}' was not found.")
        internal_id, external_id = self._parse_ref(request.path_params["ref"])
        if not self._enter():
            return _problem(429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded. Request blocked.")
        try:
            if request.method == "GET":
                doc = self.store.get(record_type, internal_id=internal_id, external_id=external_id)
                if doc is None:
                    return _problem(404, "NONEXISTENT_ID", "The record instance does not exist. Provide a valid "
                                    "record instance ID.")
                expand = request.query_params.get("expandSubResources", "false").lower() == "true"
                base = f"{self.base_url}{REST_RECORD}/{record_type}/{doc['id']}"
                out = {"links": [{"rel": "self", "href": base}], **doc}
                if "item" in doc and not expand:
                    out["item"] = {"links": [{"rel": "self", "href": f"{base}/item"}]}
                elif "item" in doc:
                    out["item"] = {"links": [{"rel": "self", "href": f"{base}/item"}], "items": doc["item"]["items"],
                                   "totalResults": len(doc["item"]["items"])}
                return json_response(out)
            if request.method == "PUT" and external_id is None:
                return _problem(405, "INVALID_METHOD", "PUT is only supported with an external ID (eid:…) upsert")
            mode = "upsert" if request.method == "PUT" else "patch"
            return await self._write(request, record_type, mode, internal_id, external_id)
        finally:
            self._leave()

    async def _write(self, request: Request, record_type: str, mode: str, internal_id: str | None,
                     external_id: str | None) -> Response:
        try:
            doc = _loads(await request.body())
            if not isinstance(doc, dict):
                raise ValueError
        except ValueError:
            return _problem(400, "INVALID_CONTENT", "The request body is not a valid JSON object.")
        if external_id is not None and doc.get("externalId") not in (None, external_id):
            return _problem(400, "USER_ERROR", "The externalId in the body differs from the one in the URL.",
                            "externalId")
        try:
            new_id, _ = await run_in_threadpool(self.store.write, record_type, doc, mode=mode,
                                                external_id=external_id, internal_id=internal_id)
        except RecordError as exc:
            return _problem(400, exc.code, str(exc), exc.path)
        if self.write_delay_s:
            await asyncio.sleep(self.write_delay_s)
        return Response(status_code=204, headers={"Location": f"{self.base_url}{REST_RECORD}/{record_type}/{new_id}"})

    # -- SOAP ---------------------------------------------------------------------------------------------
    def _check_passport(self, header: ET.Element | None) -> str | None:
        passport = header.find(q("messages", "tokenPassport")) if header is not None else None
        if passport is None:
            return "Ambiguous authentication: no tokenPassport in the SOAP header"

        def val(name: str) -> str:
            el = passport.find(q("core", name))
            return (el.text or "").strip() if el is not None else ""

        m = self.meta
        account, consumer, token, nonce, ts = (val(n) for n in ("account", "consumerKey", "token", "nonce",
                                                                 "timestamp"))
        sig_el = passport.find(q("core", "signature"))
        if account != ACCOUNT_ID or consumer != m["consumer_key"] or token != m["token_id"]:
            return "Invalid login attempt (account, consumer key or token)"
        if not _NONCE.match(nonce):
            return "Invalid nonce: 6 to 64 alphanumeric characters"
        if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
            return "Invalid timestamp: more than 5 minutes from the server's clock"
        if sig_el is None or sig_el.get("algorithm") != "HMAC-SHA256":
            return "Invalid signature algorithm: HMAC-SHA256 is required"
        expected = wire.tba_signature(account, consumer, token, nonce, ts, m["consumer_secret"], m["token_secret"])
        if not secrets.compare_digest((sig_el.text or "").strip(), expected):
            return "Invalid signature"
        try:
            with self.state.tx() as con:
                con.execute("INSERT INTO nonces VALUES (?, ?)", [f"{ts}:{nonce}", time.time()])
        except Exception:  # noqa: BLE001 - sqlite3.IntegrityError: replayed nonce
            return "Invalid nonce: already used"
        return None

    async def _soap(self, request: Request) -> Response:
        raw = await request.body()
        try:
            envelope = ET.fromstring(raw)
        except ET.ParseError as exc:
            return soap_fault("InvalidRequestFault", "INVALID_REQUEST", f"The request is not well-formed XML: {exc}")
        header, body = envelope.find(q("soapenv", "Header")), envelope.find(q("soapenv", "Body"))
        problem = self._check_passport(header)
        if problem:
            return soap_fault("InvalidCredentialsFault", "INVALID_LOGIN_ATTEMPT", problem)
        operation = body[0] if body is not None and len(body) else None
        op_name = operation.tag.split("}")[-1] if operation is not None else ""
        action = request.headers.get("soapaction", "").strip('"')
        if op_name not in LIST_LIMITS or (action and action != op_name):
            return soap_fault("InvalidRequestFault", "INVALID_REQUEST",
                              f"Unsupported operation {op_name!r} (SOAPAction {action!r})")
        items = list(operation)
        if len(items) > LIST_LIMITS[op_name]:
            return soap_fault("ExceededRecordCountFault", "EXCEEDED_MAX_RECORDS",
                              f"{op_name} accepts at most {LIST_LIMITS[op_name]} records; {len(items)} were sent")
        if not self._enter():
            return soap_fault("ExceededConcurrentRequestLimitFault", "WS_REQUEST_BLOCKED",
                              "Only one request may be made against a session at a time / concurrent request "
                              "limit exceeded. Request blocked.")
        try:
            if op_name == "getList":
                return _soap(await run_in_threadpool(self._get_list, items))
            result = await run_in_threadpool(self._write_list, op_name, items)
            if self.write_delay_s:
                await asyncio.sleep(self.write_delay_s)
            return _soap(result)
        finally:
            self._leave()

    def _write_list(self, op_name: str, items: list[ET.Element]) -> ET.Element:
        response = ET.Element(q("messages", f"{op_name}Response"))
        lst = ET.SubElement(response, q("messages", "writeResponseList"))
        _status(lst, True)
        mode = "upsert" if op_name == "upsertList" else "add"
        for el in items:
            wr = ET.SubElement(lst, q("messages", "writeResponse"))
            try:
                record_type, doc = wire.parse_record(el)
            except (ValueError, InvalidOperation) as exc:
                _status(wr, False, "INVALID_RCRD_TYPE", str(exc))
                continue
            try:
                internal_id, _ = self.store.write(record_type, doc, mode=mode)
            except RecordError as exc:
                _status(wr, False, exc.code, str(exc))
                continue
            _status(wr, True)
            ref = ET.SubElement(wr, q("messages", "baseRef"), {"internalId": str(internal_id), "type": record_type})
            if doc.get("externalId"):
                ref.set("externalId", doc["externalId"])
            ref.set(q("xsi", "type"), "core:RecordRef")
        return response

    def _get_list(self, items: list[ET.Element]) -> ET.Element:
        response = ET.Element(q("messages", "getListResponse"))
        lst = ET.SubElement(response, q("messages", "readResponseList"))
        _status(lst, True)
        for ref in items:
            rr = ET.SubElement(lst, q("messages", "readResponse"))
            record_type = ref.get("type", "")
            if record_type not in wire.RECORD_TYPES:
                _status(rr, False, "INVALID_RCRD_TYPE", f"Invalid record type {record_type!r}")
                continue
            doc = self.store.get(record_type, internal_id=ref.get("internalId"), external_id=ref.get("externalId")) \
                if ref.get("internalId") else self.store.get(record_type, external_id=ref.get("externalId"))
            if doc is None:
                _status(rr, False, "RCRD_DSNT_EXIST", "That record does not exist.")
                continue
            _status(rr, True)
            doc = dict(doc)
            doc.pop("lastModifiedDate", None)
            for line in (doc.get("item") or {}).get("items", []):
                line.pop("line", None)
            rr.append(wire.record_xml(q("messages", "record"), record_type, doc))
        return response
