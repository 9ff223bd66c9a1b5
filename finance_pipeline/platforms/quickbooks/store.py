"""The QuickBooks Online company behind the emulator, in SQLite (WAL) at `<sandbox root>/quickbooks.sqlite`.

Every emulator instance, in any process, opens the same file, so tokens, entities and `requestid`
answers agree across processes and survive a killed client.  A write and the stored answer to its
`requestid` commit in one `BEGIN IMMEDIATE` transaction: a replay never sees one without the other.

The business rules QBO applies to writes live here (`_build_*`): required fields and references,
enumerations, `Amount = Qty x UnitPrice`, a VAT code on every sales line (UK company), the
customer's currency, DocNumber length and duplicates (6140, the company prefers unique numbers),
`SyncToken` on updates (5010), unique customer names (6240), payments no larger than the balance.
"""
from __future__ import annotations

import copy
import hashlib
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from finance_pipeline.platforms.quickbooks import reference as ref
from finance_pipeline.platforms.quickbooks.query import Query, QueryError, to_epoch_ms
from finance_pipeline.platforms.quickbooks.wire import (
    COMPANY_TZ, dumps, error, loads, money, qbo_time, to_decimal,
)

ACCESS_TTL_S = 3600
REFRESH_TTL_S = 100 * 86400
REFRESH_GRACE_S = 1800  # a rotated refresh token keeps working this long (timing unverified)
REQUESTID_WINDOW_S = 86400  # replay window of a requestid (unverified; long enough for any retry)
TRANSACTIONS = ("Invoice", "SalesReceipt", "Payment")
ENTITIES = ("Customer", *TRANSACTIONS)
WORLD_ID_BASE = 1_000_000_000  # ids of the sandbox world's own documents (world.ID_BASE)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, kind TEXT NOT NULL, issued_at REAL NOT NULL, expires_at REAL NOT NULL,
    rotated_at REAL, uses INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS entities (
    type TEXT NOT NULL, id INTEGER NOT NULL, doc_number TEXT, display_name TEXT, customer_ref TEXT,
    payment_ref TEXT, txn_date TEXT, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
    status TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (type, id));
CREATE INDEX IF NOT EXISTS entities_doc_number ON entities (type, doc_number);
CREATE INDEX IF NOT EXISTS entities_updated ON entities (type, updated_ms);
CREATE INDEX IF NOT EXISTS entities_name ON entities (type, display_name COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS requests (
    requestid TEXT PRIMARY KEY, status INTEGER NOT NULL, body BLOB NOT NULL, created_at REAL NOT NULL);
"""

# query field -> (SQL column or None for a JSON path, kind)
FIELDS: dict[str, tuple[str, str]] = {
    "id": ("id", "int"), "docnumber": ("doc_number", "text"), "displayname": ("display_name", "text"),
    "customerref": ("customer_ref", "text"), "paymentrefnum": ("payment_ref", "text"),
    "txndate": ("txn_date", "text"), "metadata.createtime": ("created_ms", "time"),
    "metadata.lastupdatedtime": ("updated_ms", "time"),
}


class Invalid(Exception):
    """A write QBO refuses: (http status, fault type, errors)."""

    def __init__(self, errors: list[dict], status: int = 400, kind: str = "ValidationFault") -> None:
        super().__init__(errors[0]["Message"] if errors else "invalid")
        self.errors, self.status, self.kind = errors, status, kind


def _required(element: str) -> dict:
    return error("2020", "Required param missing, need to supply the required value for the API",
                 f"Required parameter {element} is missing in the request", element)


def _bad_ref(element: str, value: Any) -> dict:
    return error("2500", "Invalid Reference Id", f"Invalid Reference Id : {element} assigned is invalid: {value}",
                 element)


def _business(detail: str, element: str | None = None) -> dict:
    return error("6000", "A business validation error has occurred while processing your request",
                 f"Business Validation Error: {detail}", element)


def _number(value: Any, element: str, errors: list[dict]) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or isinstance(value, str):
        errors.append(error("2030", "Invalid Number", f"Invalid Number : {element}={value!r}", element))
        return None
    try:
        number = to_decimal(value)
    except (InvalidOperation, ValueError):
        errors.append(error("2030", "Invalid Number", f"Invalid Number : {element}={value!r}", element))
        return None
    return number if number.is_finite() else None


def _ref_value(obj: Any) -> str | None:
    if isinstance(obj, dict) and obj.get("value") not in (None, ""):
        return str(obj["value"])
    return None


class QboStore:
    """One QBO company (realm) and its OAuth state.

    Two clocks, both moved by `advance_clock`'s persisted offset: `now()` (wall clock) for what is
    wall-clock time even in the sandbox — token lifetimes, the refresh grace, the requestid window —
    and `clock_ms()` (the `clock` callable: the sandbox clock) for every time the company writes or
    shows — CreateTime / LastUpdatedTime, void and delete stamps, a default TxnDate, CDC's window,
    the `time` of an answer — so the same world at the same clock reads the same, run after run."""

    def __init__(self, path: Path, clock: Callable[[], datetime]) -> None:
        self.path = Path(path)
        self._clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        con = self._con()
        con.execute("PRAGMA journal_mode=WAL")
        con.executescript(SCHEMA)
        self._seed()
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        self.realm_id: str = meta["realm_id"]
        self.client_id: str = meta["client_id"]
        self.client_secret: str = meta["client_secret"]
        self.initial_refresh_token: str = meta["initial_refresh_token"]
        self.verifier_token: str = meta["verifier_token"]

    # -- plumbing --------------------------------------------------------------------------------
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            con.execute("PRAGMA busy_timeout=30000")
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
        return con

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def _seed(self) -> None:
        with self.write() as con:
            if con.execute("SELECT 1 FROM meta WHERE key = 'realm_id'").fetchone():
                return
            values = {
                "realm_id": str(9130_3500_0000_0000 + secrets.randbelow(10**8)),
                "client_id": "AB" + secrets.token_hex(20),
                "client_secret": secrets.token_urlsafe(30),
                "initial_refresh_token": "AB11" + secrets.token_hex(22),
                "verifier_token": secrets.token_hex(16),
                "clock_offset": "0",
            }
            con.executemany("INSERT INTO meta VALUES (?, ?)", list(values.items()))
            now = time.time()
            con.execute("INSERT INTO tokens (token, kind, issued_at, expires_at) VALUES (?, 'refresh', ?, ?)",
                        (values["initial_refresh_token"], now, now + REFRESH_TTL_S))
            con.execute("INSERT INTO counters VALUES ('next_id', 100)")

    @staticmethod
    def _bump(con: sqlite3.Connection, name: str, by: int = 1) -> None:
        con.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
                    (name, by, by))

    def counters(self) -> dict[str, int]:
        return dict(self._con().execute("SELECT name, value FROM counters").fetchall())

    def _offset(self) -> float:
        row = self._con().execute("SELECT value FROM meta WHERE key = 'clock_offset'").fetchone()
        return float(row[0])

    def now(self) -> float:
        """Wall-clock seconds (+ offset): token expiry, grace periods, the requestid window."""
        return time.time() + self._offset()

    def clock_ms(self) -> int:
        """The company's clock in epoch ms: the sandbox clock (+ offset), for every stamp it writes."""
        return int((self._clock().timestamp() + self._offset()) * 1000)

    def today(self) -> str:
        """The company-local date of its clock (a transaction's TxnDate when none is given)."""
        return datetime.fromtimestamp(self.clock_ms() / 1000, COMPANY_TZ).date().isoformat()

    def advance_clock(self, seconds: float) -> None:
        with self.write() as con:
            con.execute("UPDATE meta SET value = CAST(CAST(value AS REAL) + ? AS TEXT) WHERE key = 'clock_offset'",
                        (float(seconds),))

    # -- OAuth -----------------------------------------------------------------------------------
    def refresh(self, client_id: str | None, client_secret: str | None, refresh_token: str | None
                ) -> tuple[int, dict]:
        if client_id != self.client_id or not secrets.compare_digest(client_secret or "", self.client_secret):
            return 401, {"error": "invalid_client"}
        if not refresh_token:
            return 400, {"error": "invalid_request"}
        with self.write() as con:
            now = self.now()
            row = con.execute("SELECT kind, expires_at, rotated_at, uses FROM tokens WHERE token = ?",
                              (refresh_token,)).fetchone()
            if row is None or row[0] != "refresh" or row[1] <= now:
                return 400, {"error": "invalid_grant"}
            if row[2] is not None and now - row[2] > REFRESH_GRACE_S:
                return 400, {"error": "invalid_grant"}
            con.execute("UPDATE tokens SET uses = uses + 1, rotated_at = COALESCE(rotated_at, ?) WHERE token = ?",
                        (now, refresh_token))
            if row[3] >= 1:
                self._bump(con, "refresh_forks")
            access = "eyJlbmMiOiJBMTI4Q0JDLUhTMjU2IiwiYWxnIjoiZGlyIn0.." + secrets.token_urlsafe(48)
            new_refresh = "AB11" + secrets.token_hex(22)
            con.execute("INSERT INTO tokens (token, kind, issued_at, expires_at) VALUES (?, 'access', ?, ?)",
                        (access, now, now + ACCESS_TTL_S))
            con.execute("INSERT INTO tokens (token, kind, issued_at, expires_at) VALUES (?, 'refresh', ?, ?)",
                        (new_refresh, now, now + REFRESH_TTL_S))
            self._bump(con, "token_refreshes")
        return 200, {"token_type": "bearer", "access_token": access, "expires_in": ACCESS_TTL_S,
                     "refresh_token": new_refresh, "x_refresh_token_expires_in": REFRESH_TTL_S}

    def access_token_valid(self, token: str) -> bool:
        row = self._con().execute("SELECT expires_at FROM tokens WHERE token = ? AND kind = 'access'",
                                  (token,)).fetchone()
        return row is not None and row[0] > self.now()

    # -- requestid ---------------------------------------------------------------------------------
    def once(self, requestid: str | None, fn: Callable[[sqlite3.Connection], tuple[int, bytes]]
             ) -> tuple[int, bytes, bool]:
        """Run `fn` in one write transaction; a requestid seen before replays its stored answer."""
        with self.write() as con:
            if requestid:
                row = con.execute("SELECT status, body, created_at FROM requests WHERE requestid = ?",
                                  (requestid,)).fetchone()
                if row is not None and self.now() - row[2] <= REQUESTID_WINDOW_S:
                    self._bump(con, "requestid_replays")
                    return row[0], row[1], True
            status, body = fn(con)
            if requestid:
                con.execute("INSERT OR REPLACE INTO requests VALUES (?, ?, ?, ?)",
                            (requestid, status, body, self.now()))
            return status, body, False

    # -- reading ---------------------------------------------------------------------------------
    def get(self, con: sqlite3.Connection | None, entity: str, entity_id: Any) -> dict | None:
        con = con or self._con()
        try:
            key = int(str(entity_id))
        except ValueError:
            return None
        row = con.execute("SELECT doc FROM entities WHERE type = ? AND id = ?", (entity, key)).fetchone()
        return loads(row[0]) if row else None

    def docs(self, entity: str, *, include_deleted: bool = False, include_world: bool = False) -> list[dict]:
        """What clients wrote (the sandbox world's own documents only with `include_world`)."""
        sql = "SELECT doc FROM entities WHERE type = ?" + ("" if include_deleted else " AND status <> 'Deleted'")
        if not include_world:
            sql += f" AND id < {WORLD_ID_BASE}"
        return [loads(r[0]) for r in self._con().execute(sql + " ORDER BY id", (entity,)).fetchall()]

    # -- the sandbox world's own documents ---------------------------------------------------------
    def world_key(self) -> str | None:
        row = self._con().execute("SELECT value FROM meta WHERE key = 'world_key'").fetchone()
        return row[0] if row else None

    def sync_world(self, key: str, rendered: Iterable[tuple[str, dict, str, int, int]]) -> int:
        """Bring the world's documents (entity, doc, status, created ms, last changed ms) to what `key`
        (world + clock) renders: a document whose content or status changed gets SyncToken + 1 and
        LastUpdatedTime = the world's time of that change, as the bookkeeper's save stamped it;
        unchanged ones are left alone (so the LastUpdatedTime cursor and CDC see exactly what moved).
        A change the world dates no later than the stored stamp (the world putting back a document a
        client had edited) is stamped with the clock instead, never earlier than what a cursor has
        seen.  Returns how many were stamped."""
        rendered = list(rendered)
        changed = 0
        with self.write() as con:
            if self.world_key() == key:
                return 0
            now = self.clock_ms()
            for entity, doc, status, created_ms, updated_ms in rendered:
                fingerprint = hashlib.blake2b(dumps([doc, status]), digest_size=12).hexdigest()
                row = con.execute("SELECT doc FROM entities WHERE type = ? AND id = ?",
                                  (entity, int(doc["Id"]))).fetchone()
                old = loads(row[0]) if row else None
                if old is not None and old.get("_world_fp") == fingerprint:
                    continue
                doc = {**doc, "_world_fp": fingerprint, "SyncToken": str(int(old["SyncToken"]) + 1) if old else "0"}
                if status == "Deleted":
                    doc["_status"] = "Deleted"
                if old is not None and updated_ms <= old["MetaData"]["_updated_ms"]:
                    updated_ms = max(now, old["MetaData"]["_updated_ms"])
                doc["MetaData"] = {"CreateTime": qbo_time(created_ms), "LastUpdatedTime": qbo_time(updated_ms),
                                   "_created_ms": created_ms, "_updated_ms": updated_ms}
                self._store(con, entity, doc, status)
                changed += 1
            con.execute("INSERT OR REPLACE INTO meta VALUES ('world_key', ?)", (key,))
        return changed

    def query(self, q: Query) -> tuple[list[dict], int]:
        """Rows of a parsed query (Deleted ones are invisible, as in QBO) and the total count."""
        if q.entity not in ENTITIES:
            raise QueryError(f"Invalid entity name {q.entity!r} (entity names are case-sensitive)")
        clauses, args = ["type = ?", "status <> 'Deleted'"], [q.entity]
        for name, op, value in q.where:
            column, kind = FIELDS.get(name.lower(), (None, None))
            if column is None:
                if name.lower() == "active" and q.entity == "Customer":
                    clauses.append("status = ?" if value else "status <> ?")
                    args.append("Active")
                    continue
                raise QueryError(f"Property {name} is not queryable on {q.entity}")

            def conv(v: Any) -> Any:
                if kind == "time":
                    return to_epoch_ms(str(v))
                if kind == "int":
                    try:
                        return int(str(v))
                    except ValueError:
                        raise QueryError(f"{name}: {v!r} is not a number") from None
                return str(v)
            if op == "IN":
                clauses.append(f"{column} IN ({','.join('?' * len(value))})")
                args += [conv(v) for v in value]
            elif op == "LIKE":
                clauses.append(f"{column} LIKE ? ESCAPE '\\'")
                args.append(str(value).replace("_", "\\_"))
            else:
                clauses.append(f"{column} {'<>' if op == '!=' else op} ?")
                args.append(conv(value))
        where = " AND ".join(clauses)
        con = self._con()
        total = con.execute(f"SELECT COUNT(*) FROM entities WHERE {where}", args).fetchone()[0]
        if q.count:
            return [], total
        order = []
        for name, direction in q.order:
            column, _ = FIELDS.get(name.lower(), (None, None))
            if column is None:
                raise QueryError(f"Property {name} is not sortable")
            order.append(f"{column} {direction}")
        order.append("id ASC")
        rows = con.execute(f"SELECT doc FROM entities WHERE {where} ORDER BY {', '.join(order)} LIMIT ? OFFSET ?",
                           [*args, q.max_results, q.start - 1]).fetchall()
        return [loads(r[0]) for r in rows], total

    def changed_since(self, entity: str, since_ms: int, limit: int) -> list[dict]:
        """CDC: everything of `entity` changed at or after `since_ms`, deleted ones as stubs."""
        rows = self._con().execute(
            "SELECT id, status, created_ms, updated_ms, doc FROM entities WHERE type = ? AND updated_ms >= ? "
            "ORDER BY updated_ms, id LIMIT ?", (entity, since_ms, limit)).fetchall()
        out = []
        for entity_id, status, created, updated, doc in rows:
            if status == "Deleted":
                out.append({"Id": str(entity_id), "status": "Deleted", "domain": "QBO",
                            "MetaData": {"CreateTime": qbo_time(created), "LastUpdatedTime": qbo_time(updated)}})
            else:
                out.append(loads(doc))
        return out

    # -- writing ---------------------------------------------------------------------------------
    def _next_id(self, con: sqlite3.Connection) -> int:
        self._bump(con, "next_id")
        return con.execute("SELECT value FROM counters WHERE name = 'next_id'").fetchone()[0]

    def _store(self, con: sqlite3.Connection, entity: str, doc: dict, status: str = "Active") -> None:
        meta = doc["MetaData"]
        con.execute(
            "INSERT INTO entities VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(type, id) DO UPDATE SET "
            "doc_number = excluded.doc_number, display_name = excluded.display_name, "
            "customer_ref = excluded.customer_ref, payment_ref = excluded.payment_ref, txn_date = excluded.txn_date, "
            "updated_ms = excluded.updated_ms, status = excluded.status, doc = excluded.doc",
            (entity, int(doc["Id"]), doc.get("DocNumber"), doc.get("DisplayName"),
             _ref_value(doc.get("CustomerRef")), doc.get("PaymentRefNum"), doc.get("TxnDate"),
             meta["_created_ms"], meta["_updated_ms"], status, dumps(doc).decode()))

    def _stamp(self, doc: dict, created_ms: int | None = None) -> None:
        now = self.clock_ms()
        created = created_ms if created_ms is not None else doc.get("MetaData", {}).get("_created_ms", now)
        doc["MetaData"] = {"CreateTime": qbo_time(created), "LastUpdatedTime": qbo_time(now),
                           "_created_ms": created, "_updated_ms": now}

    def save(self, con: sqlite3.Connection, entity: str, body: Any, operation: str | None = None) -> dict:
        """Create, full/sparse update, void or delete one entity; raises `Invalid` with QBO's errors."""
        if not isinstance(body, dict):
            raise Invalid([error("2010", "Request has invalid or unsupported property",
                                 "The request body must be a JSON object")])
        existing = None
        if body.get("Id") not in (None, ""):
            existing = self.get(con, entity, body["Id"])
            if existing is None or existing.get("_status") == "Deleted":
                raise Invalid([error("610", "Object Not Found",
                                     f"Object Not Found : Something you're trying to use has been made inactive or "
                                     f"deleted. {entity} Id={body['Id']}", "Id")])
            token = body.get("SyncToken")
            if token is None:
                raise Invalid([_required("SyncToken")])
            if str(token) != existing["SyncToken"]:
                raise Invalid([error("5010", "Stale Object Error",
                                     f"Stale Object Error : You and another user were working on the same thing. "
                                     f"SyncToken {token} is not the current {existing['SyncToken']}", "SyncToken")])
        elif operation in ("void", "delete"):
            raise Invalid([_required("Id")])
        if operation == "delete":
            doc = copy.deepcopy(existing)
            if entity == "Payment":
                self._apply_payment(con, existing, reverse=True)
            doc["_status"] = "Deleted"
            self._stamp(doc)
            self._store(con, entity, doc, "Deleted")
            self._bump(con, f"{entity.lower()}_deleted")
            return {"Id": doc["Id"], "status": "Deleted", "domain": "QBO"}
        if operation == "void":
            if entity == "Customer":
                raise Invalid([error("2010", "Request has invalid or unsupported property",
                                     "operation=void is not supported for Customer")])
            doc = copy.deepcopy(existing)
            if entity == "Invoice" and existing.get("LinkedTxn"):
                raise Invalid([_business("This invoice has payments applied; delete them before voiding it.")])
            if entity == "Payment":
                self._apply_payment(con, existing, reverse=True)
            for line in doc.get("Line", []):
                line["Amount"] = Decimal("0.00")
            doc.update({"TotalAmt": Decimal("0.00"), "Balance": Decimal("0.00"), "HomeTotalAmt": Decimal("0.00"),
                        "PrivateNote": "Voided", "_status": "Voided"})
            if "TxnTaxDetail" in doc:
                doc["TxnTaxDetail"] = {"TotalTax": Decimal("0.00"), "TaxLine": []}
            doc["SyncToken"] = str(int(doc["SyncToken"]) + 1)
            self._stamp(doc)
            self._store(con, entity, doc, "Voided")
            self._bump(con, f"{entity.lower()}_voided")
            return doc
        if existing is not None and body.get("sparse") is True:
            merged = copy.deepcopy(existing)
            merged.update({k: v for k, v in body.items() if k not in ("sparse", "SyncToken", "Id")})
            body = merged
        build = {"Customer": self._build_customer, "Invoice": self._build_sale, "SalesReceipt": self._build_sale,
                 "Payment": self._build_payment}[entity]
        doc = build(con, entity, body, existing)
        doc["domain"], doc["sparse"] = "QBO", False
        if existing is None:
            doc["Id"] = str(self._next_id(con))
            doc["SyncToken"] = "0"
            self._stamp(doc, self.clock_ms())
        else:
            doc["Id"] = existing["Id"]
            doc["SyncToken"] = str(int(existing["SyncToken"]) + 1)
            self._stamp(doc, existing["MetaData"]["_created_ms"])
            if existing.get("_status") == "Voided":
                doc["_status"] = "Voided"
        if entity == "Payment":
            if existing is not None:
                self._apply_payment(con, existing, reverse=True)
            self._apply_payment(con, doc, reverse=False)
        self._store(con, entity, doc, doc.get("_status", "Active"))
        self._bump(con, f"{entity.lower()}_{'created' if existing is None else 'updated'}")
        return doc

    # -- entity rules ------------------------------------------------------------------------------
    def _build_customer(self, con: sqlite3.Connection, entity: str, body: dict, existing: dict | None) -> dict:
        doc = {k: v for k, v in body.items() if k in (
            "DisplayName", "CompanyName", "GivenName", "FamilyName", "PrimaryEmailAddr", "BillAddr", "Notes",
            "CurrencyRef", "Active", "PrimaryPhone", "Taxable", "ResaleNum")}
        name = str(doc.get("DisplayName") or doc.get("CompanyName") or
                   " ".join(str(doc.get(k) or "") for k in ("GivenName", "FamilyName")).strip()).strip()
        if not name:
            raise Invalid([_required("DisplayName")])
        if len(name) > 500:
            raise Invalid([error("2050", "String length is either shorter or longer than supported by "
                                 "specification", "DisplayName: Min:0 Max:500", "DisplayName")])
        doc["DisplayName"] = name
        clash = con.execute("SELECT id FROM entities WHERE type = 'Customer' AND status <> 'Deleted' "
                            "AND display_name = ? COLLATE NOCASE AND id <> ?",
                            (name, int(existing["Id"]) if existing else -1)).fetchone()
        if clash:
            raise Invalid([error("6240", "Duplicate Name Exists Error",
                                 f"The name supplied already exists. : Another customer, vendor or employee is "
                                 f"already using this name. Please use a different name. Id={clash[0]}",
                                 "DisplayName")])
        currency = _ref_value(doc.get("CurrencyRef")) or (
            _ref_value(existing.get("CurrencyRef")) if existing else ref.HOME_CURRENCY)
        if currency not in ref.ENABLED_CURRENCIES:
            raise Invalid([_business(f"The currency {currency} is not enabled for this company.", "CurrencyRef")])
        if existing is not None and _ref_value(existing.get("CurrencyRef")) != currency:
            raise Invalid([_business("You can't change the currency of a customer that has transactions.",
                                     "CurrencyRef")])
        doc["CurrencyRef"] = {"value": currency, "name": ref.ENABLED_CURRENCIES[currency]}
        email = (doc.get("PrimaryEmailAddr") or {}).get("Address") if isinstance(doc.get("PrimaryEmailAddr"),
                                                                                    dict) else None
        if email is not None and ("@" not in str(email) or " " in str(email)):
            raise Invalid([_business("Email Address does not conform to the syntax rules of RFC 822.",
                                     "PrimaryEmailAddr")])
        doc.setdefault("Active", True)
        doc["Balance"] = existing.get("Balance", Decimal("0.00")) if existing else Decimal("0.00")
        return doc

    def _build_sale(self, con: sqlite3.Connection, entity: str, body: dict, existing: dict | None) -> dict:
        errors: list[dict] = []
        doc: dict[str, Any] = {k: v for k, v in body.items() if k in (
            "DocNumber", "TxnDate", "DueDate", "CustomerRef", "CurrencyRef", "ExchangeRate", "PrivateNote",
            "CustomerMemo", "GlobalTaxCalculation", "BillEmail", "SalesTermRef", "DepositToAccountRef",
            "PaymentRefNum", "PaymentMethodRef")}
        customer = None
        cref = _ref_value(doc.get("CustomerRef"))
        if cref is None:
            if entity == "Invoice":
                errors.append(_required("CustomerRef"))
        else:
            customer = self.get(con, "Customer", cref)
            if customer is None or customer.get("_status") == "Deleted":
                errors.append(_bad_ref("CustomerRef", cref))
                customer = None
            else:
                doc["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
        currency = _ref_value(doc.get("CurrencyRef")) or (
            _ref_value(customer.get("CurrencyRef")) if customer else ref.HOME_CURRENCY)
        if currency not in ref.ENABLED_CURRENCIES:
            errors.append(_business(f"The currency {currency} is not enabled for this company.", "CurrencyRef"))
        elif customer is not None and _ref_value(customer.get("CurrencyRef")) != currency:
            errors.append(_business(f"The currency of the transaction ({currency}) must match the currency of the "
                                    f"customer ({_ref_value(customer.get('CurrencyRef'))}).", "CurrencyRef"))
        doc["CurrencyRef"] = {"value": currency, "name": ref.ENABLED_CURRENCIES.get(currency, currency)}
        rate = _number(doc.get("ExchangeRate"), "ExchangeRate", errors) if "ExchangeRate" in doc else None
        doc["ExchangeRate"] = rate if rate is not None else ref.DEFAULT_RATES.get(currency, Decimal(1))
        for field in ("TxnDate", "DueDate"):
            if doc.get(field) is not None:
                try:
                    doc[field] = date.fromisoformat(str(doc[field])[:10]).isoformat()
                except ValueError:
                    errors.append(error("2040", "Invalid Date", f"Invalid Date : {field}={doc[field]!r}", field))
        doc.setdefault("TxnDate", self.today())
        number = doc.get("DocNumber")
        if number is not None:
            number = doc["DocNumber"] = str(number)
            if len(number) > 21:
                errors.append(error("2050", "String length is either shorter or longer than supported by "
                                    "specification", "DocNumber: Min:0 Max:21", "DocNumber"))
            else:
                clash = con.execute("SELECT id FROM entities WHERE type = ? AND doc_number = ? AND status <> 'Deleted' "
                                    "AND id <> ?", (entity, number, int(existing["Id"]) if existing else -1)).fetchone()
                if clash:
                    errors.append(error("6140", "Duplicate Document Number Error",
                                        f"Duplicate Document Number Error : You must specify a different number. "
                                        f"This number has already been used. DocNumber={number} is assigned to "
                                        f"TxnType={entity} with TxnId={clash[0]}", "DocNumber"))
        gtc = doc.setdefault("GlobalTaxCalculation", "TaxExcluded")
        if gtc not in ("TaxExcluded", "TaxInclusive", "NotApplicable"):
            errors.append(error("2010", "Invalid Enumeration", f"Invalid Enumeration : {gtc}", "GlobalTaxCalculation"))
        lines = body.get("Line")
        if not isinstance(lines, list) or not lines:
            errors.append(_required("Line"))
            lines = []
        out_lines, sales, discount, computed_tax = [], Decimal("0.00"), Decimal("0.00"), {}
        for n, raw in enumerate(lines, start=1):
            line, amount = self._sale_line(raw, n, errors, computed_tax, gtc)
            if line is None:
                continue
            if line["DetailType"] == "SalesItemLineDetail":
                sales += amount
            elif line["DetailType"] == "DiscountLineDetail":
                discount += amount
            out_lines.append(line)
        subtotal = money(sales - discount)
        given_tax = body.get("TxnTaxDetail")
        if isinstance(given_tax, dict) and given_tax.get("TotalTax") is not None:
            total_tax = _number(given_tax["TotalTax"], "TxnTaxDetail.TotalTax", errors) or Decimal(0)
            tax_lines = given_tax.get("TaxLine") or []
            listed = sum((_number(t.get("Amount"), "TaxLine.Amount", errors) or Decimal(0)
                          for t in tax_lines if isinstance(t, dict)), Decimal("0.00"))
            if tax_lines and money(listed) != money(total_tax):
                errors.append(_business(f"The tax lines ({money(listed)}) do not add up to TotalTax "
                                        f"({money(total_tax)}).", "TxnTaxDetail"))
            tax_detail = {"TotalTax": money(total_tax), "TaxLine": tax_lines}
        else:  # QBO's own computation: a transaction discount lowers every taxable base in proportion
            share = (sales - discount) / sales if sales else Decimal(1)
            by_code = {}
            for code, base in computed_tax.items():
                fraction = ref.TAX_CODES[code].rate / 100
                net = base * share
                amount = net / (1 + fraction) * fraction if gtc == "TaxInclusive" else net * fraction
                by_code[code] = Decimal("0.00") if gtc == "NotApplicable" else money(amount)
            total_tax = sum(by_code.values(), Decimal("0.00"))
            tax_detail = {"TotalTax": money(total_tax), "TaxLine": [
                {"Amount": v, "DetailType": "TaxLineDetail",
                 "TaxLineDetail": {"TaxRateRef": {"value": f"1{code}"}, "PercentBased": True,
                                   "TaxPercent": ref.TAX_CODES[code].rate, "NetAmountTaxable": money(
                                       computed_tax[code] * share)}} for code, v in by_code.items()]}
        if errors:
            raise Invalid(errors)
        out_lines.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        doc["Line"] = out_lines
        doc["TxnTaxDetail"] = tax_detail
        total = subtotal if gtc == "TaxInclusive" else money(subtotal + tax_detail["TotalTax"])
        doc["TotalAmt"] = total
        doc["HomeTotalAmt"] = money(total * doc["ExchangeRate"])
        if entity == "Invoice":
            applied = sum((to_decimal(t.get("_applied", 0)) for t in (existing or {}).get("LinkedTxn", [])),
                          Decimal("0.00"))
            if applied > total:
                raise Invalid([_business(f"The invoice total {total} is less than the payments applied to it "
                                         f"({applied}).", "Line")])
            doc["LinkedTxn"] = (existing or {}).get("LinkedTxn", [])
            doc["Balance"] = money(total - applied)
            doc["HomeBalance"] = money(doc["Balance"] * doc["ExchangeRate"])
        else:
            doc["Balance"] = Decimal("0.00")
        return doc

    def _sale_line(self, raw: Any, n: int, errors: list[dict], tax: dict[str, Decimal], gtc: str
                   ) -> tuple[dict | None, Decimal]:
        if not isinstance(raw, dict):
            errors.append(error("2010", "Request has invalid or unsupported property", f"Line {n} is not an object"))
            return None, Decimal(0)
        kind = raw.get("DetailType")
        if kind in ("SubTotalLineDetail",):
            return None, Decimal(0)  # QBO recomputes the subtotal line
        if kind not in ("SalesItemLineDetail", "DiscountLineDetail", "DescriptionOnly"):
            errors.append(error("2010", "Invalid Enumeration", f"Invalid Enumeration : DetailType={kind!r}",
                                "Line.DetailType"))
            return None, Decimal(0)
        line = {"Id": str(n), "LineNum": n, "DetailType": kind}
        if raw.get("Description") is not None:
            line["Description"] = str(raw["Description"])[:4000]
        amount = _number(raw.get("Amount"), "Line.Amount", errors)
        if kind == "DescriptionOnly":
            line["DescriptionLineDetail"] = raw.get("DescriptionLineDetail") or {}
            return line, Decimal(0)
        if amount is None:
            errors.append(_required("Line.Amount"))
            return None, Decimal(0)
        line["Amount"] = money(amount)
        if kind == "DiscountLineDetail":
            detail = raw.get("DiscountLineDetail") or {}
            line["DiscountLineDetail"] = {"PercentBased": bool(detail.get("PercentBased", False)),
                                          "DiscountAccountRef": detail.get("DiscountAccountRef") or {"value": "3"}}
            return line, line["Amount"]
        detail = raw.get("SalesItemLineDetail")
        if not isinstance(detail, dict):
            errors.append(_required("Line.SalesItemLineDetail"))
            return None, Decimal(0)
        item_id = _ref_value(detail.get("ItemRef"))
        if item_id is None:
            errors.append(_required("Line.SalesItemLineDetail.ItemRef"))
        elif item_id not in ref.ITEMS:
            errors.append(_bad_ref("ItemRef", item_id))
        code = _ref_value(detail.get("TaxCodeRef"))
        if code is None:
            errors.append(_business("Make sure all your transactions have a VAT rate before you save.",
                                    "Line.SalesItemLineDetail.TaxCodeRef"))
        elif code not in ref.TAX_CODES:
            errors.append(_bad_ref("TaxCodeRef", code))
        out = {"ItemRef": {"value": item_id, "name": ref.ITEMS[item_id].name} if item_id in ref.ITEMS else
               detail.get("ItemRef"), "TaxCodeRef": {"value": code}}
        qty = _number(detail.get("Qty"), "Qty", errors)
        price = _number(detail.get("UnitPrice"), "UnitPrice", errors)
        if qty is not None:
            out["Qty"] = qty
        if price is not None:
            out["UnitPrice"] = price
        if qty is not None and price is not None and money(qty * price) != line["Amount"]:
            errors.append(error("6070", "Amount is not equal to UnitPrice * Qty",
                                f"Amount is not equal to UnitPrice * Qty. Supplied value:{line['Amount']}",
                                "Line.Amount"))
        line["SalesItemLineDetail"] = out
        if code in ref.TAX_CODES:  # the taxable base per code; tax is computed once the discount is known
            tax[code] = tax.get(code, Decimal(0)) + line["Amount"]
        return line, line["Amount"]

    def _build_payment(self, con: sqlite3.Connection, entity: str, body: dict, existing: dict | None) -> dict:
        errors: list[dict] = []
        doc = {k: v for k, v in body.items() if k in (
            "CustomerRef", "TxnDate", "TotalAmt", "PaymentRefNum", "PrivateNote", "DepositToAccountRef",
            "CurrencyRef", "ExchangeRate", "PaymentMethodRef")}
        cref = _ref_value(doc.get("CustomerRef"))
        customer = self.get(con, "Customer", cref) if cref else None
        if cref is None:
            errors.append(_required("CustomerRef"))
        elif customer is None:
            errors.append(_bad_ref("CustomerRef", cref))
        total = _number(doc.get("TotalAmt"), "TotalAmt", errors)
        if total is None:
            errors.append(_required("TotalAmt"))
        elif total < 0:
            errors.append(_business("A payment amount cannot be negative.", "TotalAmt"))
        if doc.get("PaymentRefNum") is not None and len(str(doc["PaymentRefNum"])) > 21:
            errors.append(error("2050", "String length is either shorter or longer than supported by specification",
                                "PaymentRefNum: Min:0 Max:21", "PaymentRefNum"))
        deposit = _ref_value(doc.get("DepositToAccountRef")) or "36"
        if deposit not in ref.ACCOUNTS:
            errors.append(_bad_ref("DepositToAccountRef", deposit))
        doc["DepositToAccountRef"] = {"value": deposit}
        currency = _ref_value(customer.get("CurrencyRef")) if customer else ref.HOME_CURRENCY
        doc["CurrencyRef"] = {"value": currency, "name": ref.ENABLED_CURRENCIES.get(currency, currency)}
        doc["ExchangeRate"] = ref.DEFAULT_RATES.get(currency, Decimal(1))
        try:
            doc["TxnDate"] = date.fromisoformat(str(doc.get("TxnDate") or self.today())[:10]
                                                ).isoformat()
        except ValueError:
            errors.append(error("2040", "Invalid Date", f"Invalid Date : TxnDate={doc.get('TxnDate')!r}", "TxnDate"))
        previous = {t["TxnId"]: to_decimal(t["Amount"]) for line in (existing or {}).get("Line", [])
                    for t in line.get("_links", [])}
        lines, applied = [], Decimal("0.00")
        for n, raw in enumerate(body.get("Line") or [], start=1):
            if not isinstance(raw, dict):
                errors.append(error("2010", "Request has invalid or unsupported property", f"Line {n}"))
                continue
            amount = _number(raw.get("Amount"), "Line.Amount", errors)
            links = raw.get("LinkedTxn") or []
            if amount is None or not links:
                errors.append(_required("Line.LinkedTxn" if amount is not None else "Line.Amount"))
                continue
            link = links[0]
            if link.get("TxnType") not in ("Invoice", "CreditMemo"):
                errors.append(error("2010", "Invalid Enumeration", f"Invalid Enumeration : {link.get('TxnType')}",
                                    "Line.LinkedTxn.TxnType"))
                continue
            invoice = self.get(con, "Invoice", link.get("TxnId"))
            if invoice is None or invoice.get("_status") in ("Deleted",):
                errors.append(_bad_ref("LinkedTxn", link.get("TxnId")))
                continue
            if customer is not None and _ref_value(invoice.get("CustomerRef")) != customer["Id"]:
                errors.append(_business(f"Invoice {invoice['Id']} belongs to another customer.", "Line.LinkedTxn"))
                continue
            available = to_decimal(invoice["Balance"]) + previous.get(invoice["Id"], Decimal(0))
            if money(amount) > available:
                errors.append(_business(f"The payment amount {money(amount)} exceeds the open balance "
                                        f"{money(available)} of invoice {invoice.get('DocNumber') or invoice['Id']}.",
                                        "Line.Amount"))
                continue
            lines.append({"Amount": money(amount), "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}],
                          "_links": [{"TxnId": invoice["Id"], "Amount": money(amount)}]})
            applied += money(amount)
        if total is not None and applied > total:
            errors.append(_business(f"The amount applied ({applied}) exceeds the payment amount ({money(total)}).",
                                    "Line"))
        if errors:
            raise Invalid(errors)
        doc["TotalAmt"] = money(total)
        doc["UnappliedAmt"] = money(total - applied)
        doc["Line"] = lines
        if customer is not None:
            doc["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
        return doc

    def _apply_payment(self, con: sqlite3.Connection, payment: dict, *, reverse: bool) -> None:
        """Move the invoices' balances (and their LinkedTxn) by what `payment` applies to them."""
        for line in payment.get("Line", []):
            for link in line.get("_links", []):
                invoice = self.get(con, "Invoice", link["TxnId"])
                if invoice is None:
                    continue
                amount = to_decimal(link["Amount"])
                linked = [t for t in invoice.get("LinkedTxn", []) if t.get("TxnId") != payment["Id"]]
                if not reverse:
                    linked.append({"TxnId": payment["Id"], "TxnType": "Payment", "_applied": amount})
                invoice["LinkedTxn"] = linked
                invoice["Balance"] = money(to_decimal(invoice["Balance"]) + (amount if reverse else -amount))
                invoice["HomeBalance"] = money(invoice["Balance"] * to_decimal(invoice.get("ExchangeRate", 1)))
                invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
                self._stamp(invoice)
                self._store(con, "Invoice", invoice, invoice.get("_status", "Active"))


def render(doc: dict) -> dict:
    """A stored document as QBO answers it: internal bookkeeping keys removed."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not k.startswith("_")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value
    return clean(doc)
