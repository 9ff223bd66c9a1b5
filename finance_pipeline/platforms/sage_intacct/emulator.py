"""Sage Intacct XML gateway emulator: the hotel-contracts company, rendered as of the clock, and a store
of what publishers write (`<sandbox>/sage_intacct.sqlite`).

- **Gateway.**  `POST /ia/xml/xmlgw.phtml`; sender credentials in `<control>` (wrong → control
  failure `XL03000006`), `dtdversion` 3.0, unparseable or DTD-carrying XML → `XL03000003`.
  `uniqueid=true` + a `controlid` already used by this sender → the request is refused as a duplicate
  (nothing runs).  Errors come with HTTP 200, except the concurrency limit: more than
  `concurrency_limit` (2, the default performance tier's offline slots) requests in flight for the
  company → HTTP 429 with `GW-0010`.
- **Auth.**  `<login>` (userid, companyid, password) or `<sessionid>` from `getAPISession`, which
  answers `sessionid` + `endpoint`; a session expires `session_timeout_s` after its last use (rolling;
  30 min real, scaled) → authentication failure "Invalid session", the client signs in again.
- **Reads.**  `readByQuery` (object SODOCUMENT, SODOCUMENTENTRY, ARPYMT, ARPYMTDETAIL, CUSTOMER;
  `query` of `FIELD op 'value'` clauses joined by AND with =, <>, !=, <, <=, >, >=, LIKE, NOT LIKE,
  IN (…); `pagesize` 1–1000, default 100) answers `<data listtype count totalcount numremaining
  resultId>`; `readMore` with the `resultId` continues until `numremaining` is 0.
- **Writes.**  `create_customer`, `create_sotransaction` (transactiontype 'Sales Invoice', legacy
  structured dates, `sotransitems` with `taxentries`), `update_sotransaction key="Sales Invoice-<no>"`
  (`updatesotransitems` replace the lines), `delete_sotransaction`.  Validation answers per function:
  unknown customer, duplicate `documentno` (`BL34000061`), bad currency, item, quantity or price.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable
from xml.etree import ElementTree as ET

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import ConcurrencyLimiter
from finance_pipeline.platforms.sage_intacct import wire
from finance_pipeline.platforms.sage_intacct.wire import DOCPARID, PATH, sub
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig
from finance_pipeline.sandbox.sqlite_state import SqliteState
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
CENT = Decimal("0.01")
COMPANY_ID = "curtains-hotel-contracts"
CURRENCIES = ("GBP", "EUR", "USD", "AUD")
MAX_PAGE = 1000
SESSION_TIMEOUT_S = 1800.0
MIN_SESSION_TIMEOUT_S = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS controlids (senderid TEXT NOT NULL, controlid TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (senderid, controlid));
CREATE TABLE IF NOT EXISTS customers (customerid TEXT PRIMARY KEY, recordno INTEGER NOT NULL, name TEXT NOT NULL,
    currency TEXT, email TEXT, whenmodified TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (recordno INTEGER PRIMARY KEY AUTOINCREMENT, docno TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL, whenmodified TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (sessionid TEXT PRIMARY KEY, last_used REAL NOT NULL);
"""

DOC_SQL = """
    WITH l AS (SELECT record_no, sum(value) AS subtotal, sum(tax_amount) AS tax FROM sage_intacct_document_lines
               GROUP BY record_no)
    SELECT d.*, l.subtotal, l.tax,
           greatest(d.created_at, CASE WHEN d.edited_at <= $clock THEN d.edited_at END,
                    CASE WHEN d.voided_at <= $clock THEN d.voided_at END) AS modified
      FROM sage_intacct_documents d JOIN l USING (record_no) WHERE d.created_at <= $clock"""
LINE_SQL = """
    SELECT l.*, d.docno, d.exch_rate, d.currency,
           greatest(d.created_at, CASE WHEN d.edited_at <= $clock THEN d.edited_at END,
                    CASE WHEN d.voided_at <= $clock THEN d.voided_at END) AS modified
      FROM sage_intacct_document_lines l JOIN sage_intacct_documents d USING (record_no)
     WHERE d.created_at <= $clock"""
PAY_SQL = "SELECT * FROM sage_intacct_payments WHERE paid_at <= $clock"

_CLAUSE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(=|<>|!=|>=|<=|>|<|NOT\s+LIKE|LIKE|IN)\s*(.+?)\s*$", re.I | re.S)


def _q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


class Refused(Exception):
    def __init__(self, errorno: str, description2: str, description: str = "", correction: str = "") -> None:
        super().__init__(description2)
        self.error = wire.IntacctError(errorno, description, description2, correction)


def _error_block(parent: ET.Element, errs: list[wire.IntacctError]) -> None:
    em = sub(parent, "errormessage")
    for e in errs:
        el = sub(em, "error")
        sub(el, "errorno", e.errorno)
        sub(el, "description", e.description)
        sub(el, "description2", e.description2)
        sub(el, "correction", e.correction)


def _xml(root: ET.Element, status: int = 200) -> Response:
    return Response(wire.to_bytes(root), status, media_type="application/xml")


def control_failure(errorno: str, message: str, controlid: str = "", status: int = 200) -> Response:
    root = ET.Element("response")
    control = sub(root, "control")
    sub(control, "status", "failure")
    sub(control, "senderid", "")
    sub(control, "controlid", controlid)
    sub(control, "uniqueid", "false")
    sub(control, "dtdversion", wire.DTD_VERSION)
    _error_block(root, [wire.IntacctError(errorno, "", message)])
    return _xml(root, status)


# -- query language --------------------------------------------------------------------------------------
def _literal(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
        return text[1:-1].replace("''", "'")
    return text


def parse_query(query: str) -> list[tuple[str, str, Any]]:
    clauses = []
    if not query.strip():
        return clauses
    for part in re.split(r"\s+AND\s+(?=(?:[^']*'[^']*')*[^']*$)", query.strip(), flags=re.I):
        m = _CLAUSE.match(part)
        if not m:
            raise Refused("BL01001973", f"Invalid query: {part.strip()!r}", "There was an error processing the query")
        fieldname, op, raw = m[1].upper(), re.sub(r"\s+", " ", m[2].upper()), m[3]
        if op == "IN":
            inner = raw.strip()
            if not (inner.startswith("(") and inner.endswith(")")):
                raise Refused("BL01001973", f"Invalid IN list: {raw!r}")
            values = [_literal(v) for v in re.findall(r"'(?:[^']|'')*'|[^,\s()]+", inner[1:-1])]
            clauses.append((fieldname, op, values))
        else:
            clauses.append((fieldname, op, _literal(raw)))
    return clauses


def _like(pattern: str) -> re.Pattern:
    return re.compile("^" + re.escape(pattern).replace("%", ".*").replace("_", ".") + "$", re.S)


def _compare(row: dict, clauses: list[tuple[str, str, Any]]) -> bool:
    for fieldname, op, value in clauses:
        if fieldname not in row:
            raise Refused("BL01001973", f"Invalid field {fieldname} in query")
        have = row[fieldname]
        if fieldname.startswith("WHEN") and fieldname != "WHENPAID" or fieldname == "AUWHENCREATED":
            a, b = wire.parse_itimestamp(have), None
            try:
                b = wire.parse_itimestamp(value) if op != "IN" else None
            except ValueError:
                raise Refused("BL01001973", f"Invalid date {value!r} for {fieldname}; use MM/DD/YYYY HH:MM:SS") from None
        elif fieldname in ("RECORDNO", "DOCHDRNO", "PAYMENTKEY", "RECORDKEY", "PRRECORDKEY"):
            a, b = int(have or 0), (int(value) if op not in ("IN", "LIKE", "NOT LIKE") else value)
            if op == "IN":
                b = [int(v) for v in value]
        else:
            a, b = have, value
        if op == "=" and not a == b or op in ("<>", "!=") and not a != b:
            return False
        if op in (">=", "<=", ">", "<"):
            if a is None or b is None:
                return False
            if not {">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b}[op]:
                return False
        if op == "LIKE" and not _like(str(value)).match(str(have)):
            return False
        if op == "NOT LIKE" and _like(str(value)).match(str(have)):
            return False
        if op == "IN" and a not in b:
            return False
    return True


class SageIntacctEmulator(Emulator):
    name = "sage_intacct"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.state = SqliteState(sandbox.root / "sage_intacct.sqlite", SCHEMA)
        seed = sandbox.state().seed
        digest = hashlib.blake2b(f"sage-intacct:{seed}".encode(), digest_size=24).hexdigest()
        self.secrets = {"sender_id": "CURTAINS_FINANCE", "sender_password": digest[:16], "company_id": COMPANY_ID,
                        "user_id": "ws_finance", "user_password": digest[16:40]}
        self.concurrency_limit = 2
        self._inflight = ConcurrencyLimiter(self.concurrency_limit)
        self._active = 0
        self.peak_concurrency = 0
        self._peak_lock = threading.Lock()
        # compressed like the limits, but never below a minute: a compressed session that expires between
        # signing in and the next call on a busy machine would test the machine, not the client
        # (tests that exercise expiry set session_timeout_s themselves)
        self.session_timeout_s = max(SESSION_TIMEOUT_S / max(self.config.time_scale, 1e-9), MIN_SESSION_TIMEOUT_S)
        self._results: dict[str, tuple[str, list[dict], int, float, int]] = {}
        self._results_lock = threading.Lock()
        self.write_delay_s = 0.0  # tests: hold a write request's answer this long after it committed

    # -- what clients and tests use ---------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        return dict(self.secrets)

    def set_concurrency_limit(self, limit: int) -> None:
        self.concurrency_limit = limit
        self._inflight = ConcurrencyLimiter(limit)

    def documents(self) -> list[dict]:
        """What publishers wrote: every Sales Invoice in the store (as stored bodies)."""
        rows = self.state.read().execute("SELECT recordno, body FROM documents ORDER BY recordno").fetchall()
        return [{"RECORDNO": r[0], **orjson.loads(r[1])} for r in rows]

    def customers(self) -> list[dict]:
        cur = self.state.read().execute("SELECT customerid, name, currency, email FROM customers ORDER BY customerid")
        return [dict(zip(("CUSTOMERID", "NAME", "CURRENCY", "EMAIL"), r)) for r in cur.fetchall()]

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(self.state.counters())
        out["peak_concurrency"] = self.peak_concurrency
        return out

    def routes(self) -> list[Route]:
        return [Route(PATH, self._gateway, methods=["POST"])]

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return control_failure("GW-0010", "Too many concurrent requests; retry later", status=429)
        return Response("<html><body><h1>Service Unavailable</h1></body></html>", status, media_type="text/html")

    # -- gateway ---------------------------------------------------------------------------------------
    async def _gateway(self, request: Request) -> Response:
        if self.config.enforce_rate_limits and self._inflight.try_acquire() > 0:
            self.counters["over_limit"] += 1
            return control_failure("GW-0010", "The company has reached its limit of concurrent API requests "
                                              "(performance tier); retry later", status=429)
        if not self.config.enforce_rate_limits:
            self._inflight.try_acquire()
        with self._peak_lock:
            self._active += 1
            self.peak_concurrency = max(self.peak_concurrency, self._active)
        try:
            body = await request.body()
            response, wrote = await run_in_threadpool(self._handle, body)
            if wrote and self.write_delay_s:
                import asyncio

                await asyncio.sleep(self.write_delay_s)
            return response
        finally:
            with self._peak_lock:
                self._active -= 1
            self._inflight.release()

    def _handle(self, body: bytes) -> tuple[Response, bool]:
        try:
            root = wire.parse(body)
        except (wire.UnsafeXml, ET.ParseError) as exc:
            return control_failure("XL03000003", f"XML Parse error: {exc}"), False
        if root.tag != "request":
            return control_failure("XL03000003", "XML Parse error: the root element must be <request>"), False
        control = root.find("control")
        controlid = (control.findtext("controlid") or "") if control is not None else ""
        if control is None or control.findtext("senderid") != self.secrets["sender_id"] \
                or control.findtext("password") != self.secrets["sender_password"]:
            return control_failure("XL03000006", "Incorrect Intacct XML Partner ID or password.", controlid), False
        if (control.findtext("dtdversion") or "") != wire.DTD_VERSION:
            return control_failure("XL03000003", "dtdversion must be 3.0", controlid), False
        operation = root.find("operation")
        if operation is None or operation.find("authentication") is None:
            return control_failure("XL03000003", "XML Parse error: <operation><authentication> is required",
                                   controlid), False
        out = ET.Element("response")
        c = sub(out, "control")
        sub(c, "status", "success")
        sub(c, "senderid", self.secrets["sender_id"])
        sub(c, "controlid", controlid)
        sub(c, "uniqueid", control.findtext("uniqueid") or "false")
        sub(c, "dtdversion", wire.DTD_VERSION)
        op_out = sub(out, "operation")
        auth_el = sub(op_out, "authentication")
        session_id, auth_error = self._authenticate(operation.find("authentication"))
        if auth_error:
            sub(auth_el, "status", "failure")
            sub(auth_el, "userid", self.secrets["user_id"])
            sub(auth_el, "companyid", COMPANY_ID)
            _error_block(op_out, [wire.IntacctError("XL03000006", "", auth_error)])
            return _xml(out), False
        if (control.findtext("uniqueid") or "").strip().lower() == "true":
            if not controlid:
                return control_failure("XL03000003", "controlid is required when uniqueid is true"), False
            with self.state.tx() as con:
                seen = con.execute("SELECT 1 FROM controlids WHERE senderid = ? AND controlid = ?",
                                   [self.secrets["sender_id"], controlid]).fetchone()
                if not seen:
                    con.execute("INSERT INTO controlids VALUES (?, ?, ?)", [self.secrets["sender_id"], controlid,
                                                                            time.time()])
            if seen:
                self.counters["duplicate_controlid"] += 1
                return control_failure("XL03000009", f"A request with control ID {controlid} has already been "
                                                     "received; uniqueid=true refuses it", controlid), False
        sub(auth_el, "status", "success")
        sub(auth_el, "userid", self.secrets["user_id"])
        sub(auth_el, "companyid", COMPANY_ID)
        sub(auth_el, "locationid", "")
        sub(auth_el, "sessiontimestamp", datetime.now(UTC).isoformat(timespec="seconds"))
        sub(auth_el, "sessiontimeout", datetime.fromtimestamp(time.time() + self.session_timeout_s, UTC)
            .isoformat(timespec="seconds"))
        content = operation.find("content")
        wrote = False
        for fn in (content.findall("function") if content is not None else []):
            result = sub(op_out, "result")
            body_el = fn[0] if len(fn) else None
            name = body_el.tag if body_el is not None else ""
            handler = self._functions().get(name)
            status = sub(result, "status", "success")
            sub(result, "function", name)
            sub(result, "controlid", fn.get("controlid", ""))
            try:
                if handler is None:
                    raise Refused("XL03000004", f"Unknown function {name!r}")
                data, is_write = handler(body_el, session_id)
                wrote = wrote or is_write
                if data is not None:
                    result.append(data)
            except Refused as exc:
                status.text = "failure"
                _error_block(result, [exc.error])
        return _xml(out), wrote

    def _authenticate(self, auth: ET.Element) -> tuple[str | None, str | None]:
        sid = auth.findtext("sessionid")
        now = time.time()
        if sid is not None:
            with self.state.tx() as con:
                row = con.execute("SELECT last_used FROM sessions WHERE sessionid = ?", [sid.strip()]).fetchone()
                if row is None or now - row[0] > self.session_timeout_s:
                    return None, "Invalid session"
                con.execute("UPDATE sessions SET last_used = ? WHERE sessionid = ?", [now, sid.strip()])
            return sid.strip(), None
        login = auth.find("login")
        if login is None or login.findtext("userid") != self.secrets["user_id"] \
                or login.findtext("companyid") != COMPANY_ID or login.findtext("password") != self.secrets["user_password"]:
            return None, "Sign-in information is incorrect"
        return None, None

    def _functions(self) -> dict[str, Callable[[ET.Element, str | None], tuple[ET.Element | None, bool]]]:
        return {"getAPISession": self._get_session, "readByQuery": self._read_by_query, "readMore": self._read_more,
                "create_customer": self._create_customer, "create_sotransaction": self._create_so,
                "update_sotransaction": self._update_so, "delete_sotransaction": self._delete_so}

    def _get_session(self, el: ET.Element, _sid: str | None) -> tuple[ET.Element, bool]:
        sid = secrets.token_urlsafe(24) + ".."
        with self.state.tx() as con:
            con.execute("INSERT INTO sessions VALUES (?, ?)", [sid, time.time()])
        self.counters["sessions"] += 1
        data = ET.Element("data")
        api = sub(data, "api")
        sub(api, "sessionid", sid)
        sub(api, "endpoint", f"{self.base_url}{PATH}")
        sub(api, "locationid", "")
        return data, False

    # -- reads ---------------------------------------------------------------------------------------------
    def _rows(self, sql: str) -> list[dict]:
        cur = self.db.execute(sql, {"clock": self.sandbox.clock} if "$clock" in sql else None)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]

    def _objects(self, obj: str) -> list[dict]:
        clock = self.sandbox.clock
        if obj == "SODOCUMENT":
            out = [self._render_doc(d, clock) for d in self._rows(DOC_SQL)]
            return out + [self._render_stored(r) for r in self.documents()]
        if obj == "SODOCUMENTENTRY":
            out = [self._render_line(line) for line in self._rows(LINE_SQL)]
            for doc in self.documents():
                out += self._render_stored_lines(doc)
            return out
        if obj == "ARPYMT":
            return [self._render_payment(p) for p in self._rows(PAY_SQL)]
        if obj == "ARPYMTDETAIL":
            return [self._render_detail(p) for p in self._rows(PAY_SQL)]
        if obj == "CUSTOMER":
            return self._all_customers()
        raise Refused("BL01001973", f"Object {obj!r} is not supported by readByQuery here")

    def _all_customers(self) -> list[dict]:
        out = {}
        for c in self._rows("SELECT * FROM customers WHERE kind = 'trade'"):
            out[c["customer_id"]] = {"RECORDNO": str(int(c["customer_id"][1:])), "CUSTOMERID": c["customer_id"],
                                     "NAME": c["company"] or "", "CURRENCY": c["currency"] or "",
                                     "WHENMODIFIED": wire.itimestamp(c["created_at"])}
        for r in self.state.read().execute("SELECT customerid, recordno, name, currency, whenmodified FROM customers"):
            out[r[0]] = {"RECORDNO": str(r[1]), "CUSTOMERID": r[0], "NAME": r[2], "CURRENCY": r[3] or "",
                         "WHENMODIFIED": r[4]}
        return list(out.values())

    @staticmethod
    def _render_doc(d: dict, clock: datetime) -> dict:
        rate = d["exch_rate"]
        edited = d["edited_at"] is not None and d["edited_at"] <= clock
        voided = d["voided_at"] is not None and d["voided_at"] <= clock
        subtotal, tax = d["subtotal"], d["tax"]
        return {
            "RECORDNO": str(d["record_no"]), "DOCNO": d["docno"], "DOCID": f"{DOCPARID}-{d['docno']}",
            "DOCPARID": DOCPARID, "STATE": "Canceled" if voided else "Pending",
            "WHENCREATED": wire.idate(d["issued_on"]), "WHENDUE": wire.idate(d["due_on"]),
            "AUWHENCREATED": wire.itimestamp(d["created_at"]), "WHENMODIFIED": wire.itimestamp(d["modified"]),
            "CUSTVENDID": d["customer_id"], "CUSTVENDNAME": d["customer_name"] or "",
            "BILLTO.EMAIL1": d["customer_email"] or "", "TERM.NAME": f"Net {d['terms_days']}",
            "PONUMBER": d["edited_po_number"] if edited else d["po_number"],
            "CURRENCY": d["currency"], "BASECURR": "GBP", "EXCHRATE": wire.money(rate),
            "EXCHRATEDATE": wire.idate(d["issued_on"]), "EXCHRATETYPES.NAME": "Intacct Daily Rate",
            "PRRECORDKEY": str(d["ar_record_no"]),
            "SHIPTO.MAILADDRESS.COUNTRYCODE": d["country"], "SHIPTO.MAILADDRESS.STATE": d["region"] or "",
            "TAX_TREATMENT": d["tax_treatment"],
            "TRX_SUBTOTAL": wire.money(subtotal), "TRX_TOTAL": wire.money(subtotal + tax),
            "SUBTOTAL": wire.money(_q(subtotal * rate)), "TOTAL": wire.money(_q((subtotal + tax) * rate)),
        }

    @staticmethod
    def _render_line(line: dict) -> dict:
        rate = line["exch_rate"]
        return {
            "RECORDNO": str(line["line_id"]), "DOCHDRNO": str(line["record_no"]),
            "DOCHDRID": f"{DOCPARID}-{line['docno']}", "DOCPARID": DOCPARID, "LINE_NO": str(line["line_no"]),
            "ITEMID": line["item_id"], "ITEMNAME": line["description"] or "", "UNIT": line["unit"] or "",
            "QUANTITY": str(line["quantity"]), "TRX_PRICE": wire.money(line["price"]),
            "TRX_VALUE": wire.money(line["value"]), "VALUE": wire.money(_q(line["value"] * rate)),
            "TAXRATE": wire.money(line["tax_rate"]), "TRX_TAX": wire.money(line["tax_amount"]),
            "CURRENCY": line["currency"], "WHENMODIFIED": wire.itimestamp(line["modified"]),
        }

    @staticmethod
    def _render_payment(p: dict) -> dict:
        return {
            "RECORDNO": str(p["payment_id"]), "CUSTOMERID": p["customer_id"], "PAYMENTMETHOD": "EFT",
            "DOCNUMBER": p["bank_reference"], "RECEIPTDATE": wire.idate(p["paid_on"]),
            "WHENPAID": wire.idate(p["paid_on"]), "AUWHENCREATED": wire.itimestamp(p["paid_at"]),
            "WHENMODIFIED": wire.itimestamp(p["paid_at"]), "CURRENCY": p["currency"], "BASECURR": "GBP",
            "EXCHANGE_RATE": wire.money(p["exch_rate"]), "TRX_TOTALPAID": wire.money(p["amount"]),
            "TOTALPAID": wire.money(_q(p["amount"] * p["exch_rate"])), "STATE": "C",
        }

    @staticmethod
    def _render_detail(p: dict) -> dict:
        return {
            "RECORDNO": str(p["detail_id"]), "PAYMENTKEY": str(p["payment_id"]), "RECORDKEY": str(p["ar_record_no"]),
            "TRX_PAYMENTAMOUNT": wire.money(p["amount"]), "PAYMENTAMOUNT": wire.money(_q(p["amount"] * p["exch_rate"])),
            "CURRENCY": p["currency"], "WHENMODIFIED": wire.itimestamp(p["paid_at"]),
        }

    @staticmethod
    def _render_stored(doc: dict) -> dict:
        return {k: v for k, v in doc.items() if k != "LINES"} | {"RECORDNO": str(doc["RECORDNO"])}

    @staticmethod
    def _render_stored_lines(doc: dict) -> list[dict]:
        return [{**line, "DOCHDRNO": str(doc["RECORDNO"]), "DOCHDRID": doc["DOCID"], "DOCPARID": DOCPARID,
                 "WHENMODIFIED": doc["WHENMODIFIED"]} for line in doc["LINES"]]

    def _data(self, obj: str, rows: list[dict], fields: list[str] | None, total: int, remaining: int,
              result_id: str) -> ET.Element:
        data = ET.Element("data", {"listtype": obj, "count": str(len(rows)), "totalcount": str(total),
                                   "numremaining": str(remaining), "resultId": result_id if remaining else ""})
        for row in rows:
            el = sub(data, obj)
            for k, v in row.items():
                if fields is None or k in fields:
                    sub(el, k, v if isinstance(v, str) else "" if v is None else str(v))
        return data

    def _read_by_query(self, el: ET.Element, _sid: str | None) -> tuple[ET.Element, bool]:
        obj = (el.findtext("object") or "").strip().upper()
        fields_text = (el.findtext("fields") or "*").strip()
        fields = None if fields_text in ("*", "") else [f.strip().upper() for f in fields_text.split(",")]
        try:
            size = int(el.findtext("pagesize") or 100)
        except ValueError:
            raise Refused("BL01001973", "pagesize must be a number") from None
        if not 1 <= size <= MAX_PAGE:
            raise Refused("BL01001973", f"pagesize must be between 1 and {MAX_PAGE}")
        clauses = parse_query(el.findtext("query") or "")
        rows = [r for r in self._objects(obj) if _compare(r, clauses)]
        rows.sort(key=lambda r: int(r.get("RECORDNO") or 0))
        result_id = ""
        if len(rows) > size:
            result_id = f"{secrets.token_hex(8)}-{obj}"
            with self._results_lock:
                now = time.monotonic()
                for k in [k for k, v in self._results.items() if now - v[3] > 1800]:
                    del self._results[k]
                self._results[result_id] = (obj, rows, size, now, size)
        self.counters["reads"] += 1
        return self._data(obj, rows[:size], fields, len(rows), max(0, len(rows) - size), result_id), False

    def _read_more(self, el: ET.Element, _sid: str | None) -> tuple[ET.Element, bool]:
        rid = (el.findtext("resultId") or "").strip()
        with self._results_lock:
            entry = self._results.get(rid)
            if entry is None:
                raise Refused("BL01001973", f"Invalid or expired resultId {rid!r}")
            obj, rows, size, _, offset = entry
            chunk = rows[offset:offset + size]
            remaining = max(0, len(rows) - offset - size)
            if remaining == 0:
                self._results.pop(rid, None)
            else:
                self._results[rid] = (obj, rows, size, time.monotonic(), offset + size)
        self.counters["reads"] += 1
        return self._data(obj, chunk, None, len(rows), remaining, rid), False

    # -- writes ---------------------------------------------------------------------------------------------
    def _customer_exists(self, customer_id: str) -> bool:
        if self.state.read().execute("SELECT 1 FROM customers WHERE customerid = ?", [customer_id]).fetchone():
            return True
        return bool(self.db.execute("SELECT 1 FROM customers WHERE kind = 'trade' AND customer_id = ?",
                                    [customer_id]).fetchone())

    def _create_customer(self, el: ET.Element, _sid: str | None) -> tuple[ET.Element, bool]:
        cid = (el.findtext("customerid") or "").strip()
        name = (el.findtext("name") or "").strip()
        currency = (el.findtext("currency") or "").strip().upper() or None
        if not cid or len(cid) > 20:
            raise Refused("BL01001973", "customerid is required (at most 20 characters)")
        if not name:
            raise Refused("BL01001973", "Required field Name is missing")
        if currency and currency not in CURRENCIES:
            raise Refused("BL01001973", f"Invalid currency {currency}")
        if self._customer_exists(cid):
            raise Refused("BL01001973", f"Another Customer with the given value(s) {cid} already exists",
                          "Could not create Customer record!")
        email = el.findtext("contactinfo/contact/email1")
        with self.state.tx() as con:
            n = con.execute("SELECT COUNT(*) FROM customers").fetchone()[0]
            con.execute("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
                        [cid, 50_000 + n, name, currency, email, wire.itimestamp(self.sandbox.clock)])
            SqliteState.bump(con, "customer_created")
        data = ET.Element("data", {"listtype": "objects", "count": "1"})
        sub(sub(data, "customer"), "customerid", cid)
        return data, True

    def _so_document(self, el: ET.Element, docno: str) -> dict:
        """Validate a create/update_sotransaction body; the stored document (SODOCUMENT fields)."""
        issued = wire.read_legacy_date(el.find("datecreated"))
        if issued is None:
            raise Refused("BL01001973", "Required field datecreated is missing or not a date")
        due = wire.read_legacy_date(el.find("datedue"))
        cid = (el.findtext("customerid") or "").strip()
        if not cid:
            raise Refused("BL01001973", "Required field customerid is missing")
        if not self._customer_exists(cid):
            raise Refused("BL01001973", f"Invalid Customer {cid} specified.", "Could not create Document record!")
        currency = (el.findtext("currency") or "").strip().upper()
        if currency not in CURRENCIES:
            raise Refused("BL01001973", f"Invalid currency {currency or '(none)'}", "Could not create Document record!")
        items = el.find("sotransitems")
        if items is None:
            items = el.find("updatesotransitems")
        lines, subtotal, tax_total = [], Decimal(0), Decimal(0)
        for n, item in enumerate(list(items) if items is not None else [], start=1):
            itemid = (item.findtext("itemid") or "").strip()
            if not itemid:
                raise Refused("BL01001973", f"Line {n}: itemid is required")
            try:
                qty, price = Decimal(item.findtext("quantity") or ""), Decimal(item.findtext("price") or "")
                taxes = [Decimal(t.findtext("trx_tax") or "0") for t in item.findall("taxentries/taxentry")]
            except InvalidOperation:
                raise Refused("BL01001973", f"Line {n}: quantity, price and trx_tax must be numbers") from None
            if qty <= 0:
                raise Refused("BL01001973", f"Line {n}: quantity must be greater than zero")
            value, tax = _q(qty * price), sum(taxes, Decimal(0))
            subtotal += value
            tax_total += tax
            lines.append({"RECORDNO": "", "LINE_NO": str(n), "ITEMID": itemid, "ITEMNAME": item.findtext("memo") or "",
                          "QUANTITY": format(qty, "f"), "TRX_PRICE": format(price, "f"), "TRX_VALUE": wire.money(value),
                          "TRX_TAX": wire.money(tax), "CURRENCY": currency})
        if not lines:
            raise Refused("BL01001973", "A transaction needs at least one line (sotransitems)")
        return {"DOCNO": docno, "DOCID": f"{DOCPARID}-{docno}", "DOCPARID": DOCPARID, "STATE": "Pending",
                "WHENCREATED": wire.idate(issued), "WHENDUE": wire.idate(due) if due else "",
                "CUSTVENDID": cid, "CURRENCY": currency, "BASECURR": "GBP",
                "EXCHRATETYPES.NAME": (el.findtext("exchratetype") or "").strip(),
                "PONUMBER": (el.findtext("referenceno") or "").strip(), "MESSAGE": (el.findtext("message") or "").strip(),
                "TERM.NAME": (el.findtext("termname") or "").strip(),
                "TRX_SUBTOTAL": wire.money(subtotal), "TRX_TOTAL": wire.money(subtotal + tax_total),
                "TRX_TAX": wire.money(tax_total), "LINES": lines}

    def _create_so(self, el: ET.Element, _sid: str | None) -> tuple[ET.Element, bool]:
        kind = (el.findtext("transactiontype") or "").strip()
        if kind != DOCPARID:
            raise Refused("BL01001973", f"Invalid transaction definition {kind!r}", "Could not create Document record!")
        docno = (el.findtext("documentno") or "").strip()
        if not docno:
            raise Refused("BL01001973", "documentno is required: the transaction definition numbers documents "
                                        "manually")
        doc = self._so_document(el, docno)
        now = wire.itimestamp(self.sandbox.clock)
        with self.state.tx() as con:
            if con.execute("SELECT 1 FROM documents WHERE docno = ?", [docno]).fetchone() or any(
                    True for _ in self.db.execute("SELECT 1 FROM sage_intacct_documents WHERE docno = ?",
                                                  [docno]).fetchall()):
                raise Refused("BL34000061", f"Document number {docno} already exists.",
                              "Could not create Document record!", "Use a different document number.")
            doc["WHENMODIFIED"] = now
            con.execute("INSERT INTO documents (docno, body, whenmodified) VALUES (?, ?, ?)",
                        [docno, orjson.dumps(doc).decode(), now])
            SqliteState.bump(con, "sotransaction_created")
        data = ET.Element("data", {"listtype": "objects", "count": "1"})
        sub(sub(data, "sotransaction"), "key", doc["DOCID"])
        return data, True

    def _stored_key(self, el: ET.Element) -> str:
        key = (el.get("key") or "").strip()
        prefix = f"{DOCPARID}-"
        if not key.startswith(prefix):
            raise Refused("BL01001973", f"Invalid key {key!r}: expected '{prefix}<document number>'")
        return key[len(prefix):]

    def _update_so(self, el: ET.Element, _sid: str | None) -> tuple[ET.Element, bool]:
        docno = self._stored_key(el)
        doc = self._so_document(el, docno)
        now = wire.itimestamp(self.sandbox.clock)
        with self.state.tx() as con:
            if not con.execute("SELECT 1 FROM documents WHERE docno = ?", [docno]).fetchone():
                raise Refused("BL01001973", f"Sales Invoice {docno} does not exist", "Could not update Document record!")
            doc["WHENMODIFIED"] = now
            con.execute("UPDATE documents SET body = ?, whenmodified = ? WHERE docno = ?",
                        [orjson.dumps(doc).decode(), now, docno])
            SqliteState.bump(con, "sotransaction_updated")
        data = ET.Element("data", {"listtype": "objects", "count": "1"})
        sub(sub(data, "sotransaction"), "key", doc["DOCID"])
        return data, True

    def _delete_so(self, el: ET.Element, _sid: str | None) -> tuple[ET.Element | None, bool]:
        docno = self._stored_key(el)
        with self.state.tx() as con:
            if con.execute("DELETE FROM documents WHERE docno = ?", [docno]).rowcount == 0:
                raise Refused("BL01001973", f"Sales Invoice {docno} does not exist", "Could not delete Document record!")
            SqliteState.bump(con, "sotransaction_deleted")
        return None, True
