"""The Xero organisation behind the emulator, kept in SQLite (WAL) at `<sandbox root>/xero.sqlite`.

Every emulator instance, in any process, opens the same file, so they agree on tokens, contacts,
invoices and idempotency keys, and what was posted survives a killed client or a restarted
emulator.  Writes run in `BEGIN IMMEDIATE` transactions (one writer at a time across processes);
an idempotent request stores its response in the same transaction as its effect, so a replay
can never see the effect without the response or the other way round.

The domain rules Xero applies on writes live here too (`_build_invoice`, `_build_contact`):
validation messages in Xero's words, totals computed the way Xero computes them (2 dp, half away
from zero), `TaxAmount` kept when the caller supplies it.

Documents are stored twice: canonically (`doc`, JSON with exact decimals and ISO dates) for
updates and read-back, and pre-rendered in wire format (`json_*` blobs) so list pages are a
single indexed SELECT plus a byte join, whatever the page size.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import re
import secrets
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

from finance_pipeline.platforms.xero import reference as ref
from finance_pipeline.platforms.xero.emulator_journals import ManualJournalsMixin
from finance_pipeline.platforms.xero.emulator_payments import CreditNotesMixin, PaymentsMixin
from finance_pipeline.platforms.xero.where import Field, WhereError, compile_where
from finance_pipeline.platforms.xero.wire import (
    date_string, dumps, loads, money, ms_json, parse_date, to_decimal,
)

ACCESS_TTL_S = 1800  # 30 min, as Xero
REFRESH_TTL_S = 60 * 86400  # 60 days
REFRESH_GRACE_S = 1800  # a rotated refresh token keeps working this long
IDEMPOTENCY_WINDOW_S = 360  # ≈ 6 min (xero.md, unverified)
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
SCOPES = ["offline_access", "accounting.transactions", "accounting.contacts", "accounting.settings"]

INVOICE_FIELDS = {
    "InvoiceNumber": Field("invoice_number"), "Reference": Field("reference"), "Status": Field("status"),
    "Type": Field("type"), "InvoiceID": Field("invoice_id"), "Contact.ContactID": Field("contact_id"),
    "Contact.ContactNumber": Field("contact_number"), "Contact.Name": Field("contact_name", "text_nocase"),
    "CurrencyCode": Field("currency"), "Date": Field("date", "date"), "DueDate": Field("due_date", "date"),
    "UpdatedDateUTC": Field("updated_ms", "ms"),
}
INVOICE_ORDER = {"invoicenumber": "invoice_number", "reference": "reference", "status": "status",
                 "date": "date", "duedate": "due_date", "updateddateutc": "updated_ms", "invoiceid": "invoice_id",
                 "type": "type", "currencycode": "currency"}
CONTACT_FIELDS = {
    "ContactNumber": Field("contact_number"), "Name": Field("name", "text_nocase"), "ContactID": Field("contact_id"),
    "EmailAddress": Field("email", "text_nocase"), "ContactStatus": Field("status"),
    "IsCustomer": Field("is_customer", "bool"), "UpdatedDateUTC": Field("updated_ms", "ms"),
}
CONTACT_ORDER = {"name": "name", "contactnumber": "contact_number", "updateddateutc": "updated_ms",
                 "contactid": "contact_id", "emailaddress": "email"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, kind TEXT NOT NULL, issued_at REAL NOT NULL, expires_at REAL NOT NULL,
    rotated_at REAL, uses INTEGER NOT NULL DEFAULT 0, parent TEXT);
CREATE TABLE IF NOT EXISTS contacts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, contact_id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL,
    name TEXT NOT NULL, contact_number TEXT, email TEXT, status TEXT NOT NULL,
    is_customer INTEGER NOT NULL DEFAULT 0, updated_ms INTEGER NOT NULL,
    doc TEXT NOT NULL, json BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS contacts_active_name ON contacts (tenant_id, name COLLATE NOCASE)
    WHERE status = 'ACTIVE';
CREATE INDEX IF NOT EXISTS contacts_number ON contacts (tenant_id, contact_number);
CREATE INDEX IF NOT EXISTS contacts_updated ON contacts (tenant_id, updated_ms);
CREATE TABLE IF NOT EXISTS invoices (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, invoice_id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL,
    type TEXT NOT NULL, invoice_number TEXT, reference TEXT, status TEXT NOT NULL,
    contact_id TEXT NOT NULL, contact_number TEXT, contact_name TEXT, currency TEXT NOT NULL,
    date TEXT, due_date TEXT, updated_ms INTEGER NOT NULL,
    doc TEXT NOT NULL, json_full2 BLOB NOT NULL, json_full4 BLOB NOT NULL, json_summary BLOB NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS invoices_accrec_number ON invoices (tenant_id, invoice_number)
    WHERE type = 'ACCREC';
CREATE INDEX IF NOT EXISTS invoices_number ON invoices (tenant_id, invoice_number);
CREATE INDEX IF NOT EXISTS invoices_reference ON invoices (tenant_id, reference);
CREATE INDEX IF NOT EXISTS invoices_status ON invoices (tenant_id, status);
CREATE INDEX IF NOT EXISTS invoices_updated ON invoices (tenant_id, updated_ms);
CREATE INDEX IF NOT EXISTS invoices_contact ON invoices (tenant_id, contact_id);
CREATE TABLE IF NOT EXISTS idempotency (
    tenant_id TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, status INTEGER NOT NULL,
    body BLOB NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (tenant_id, key));
"""


class Conflict(Exception):
    """Idempotency key reused with a different request."""


@dataclass
class ElementResult:
    ok: bool
    wire: dict  # the element as answered (rendered document, or the echo with ValidationErrors)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _now_ms(now: float) -> int:
    return int(now * 1000)


def _validation_echo(element: Any, errors: list[str], id_field: str | None = None) -> dict:
    echo = dict(element) if isinstance(element, dict) else {"Element": element}
    if id_field:
        echo.setdefault(id_field, ZERO_GUID)
    echo["HasErrors"] = True
    echo["StatusAttributeString"] = "ERROR"
    echo["ValidationErrors"] = [{"Message": m} for m in errors]
    return echo


class XeroStore(PaymentsMixin, CreditNotesMixin, ManualJournalsMixin):
    """One Xero organisation (tenant) and its OAuth state, persisted in SQLite."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._access_cache: dict[str, float] = {}
        self._cache_lock = threading.Lock()
        con = self._con()
        con.execute("PRAGMA journal_mode=WAL")
        con.executescript(SCHEMA)
        self._ensure_payment_schema(con)
        self._ensure_journal_schema(con)
        self._seed()
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        self.tenant_id: str = meta["tenant_id"]
        self.client_id: str = meta["client_id"]
        self.client_secret: str = meta["client_secret"]
        self.initial_refresh_token: str = meta["initial_refresh_token"]
        self.webhook_key: str = meta["webhook_key"]
        self.connection_id: str = meta["connection_id"]
        self.auth_event_id: str = meta["auth_event_id"]

    # -- plumbing --------------------------------------------------------------------------------
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            con.execute("PRAGMA busy_timeout=30000")
            con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across process crashes
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

    def read(self) -> sqlite3.Connection:
        return self._con()

    def _seed(self) -> None:
        with self.write() as con:
            if con.execute("SELECT 1 FROM meta WHERE key = 'tenant_id'").fetchone():
                return
            values = {
                "tenant_id": str(uuid.uuid4()),
                "client_id": secrets.token_hex(16).upper(),
                "client_secret": secrets.token_urlsafe(36),
                "initial_refresh_token": secrets.token_hex(32),
                "webhook_key": base64.b64encode(secrets.token_bytes(48)).decode(),
                "connection_id": str(uuid.uuid4()),
                "auth_event_id": str(uuid.uuid4()),
                "clock_offset": "0",
                "created_ms": str(_now_ms(time.time())),
            }
            con.executemany("INSERT INTO meta VALUES (?, ?)", list(values.items()))
            now = time.time()
            con.execute("INSERT INTO tokens (token, kind, issued_at, expires_at) VALUES (?, 'refresh', ?, ?)",
                        (values["initial_refresh_token"], now, now + REFRESH_TTL_S))

    @staticmethod
    def _bump(con: sqlite3.Connection, name: str, by: int = 1) -> None:
        con.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
                    (name, by, by))

    def counters(self) -> dict[str, int]:
        return dict(self.read().execute("SELECT name, value FROM counters").fetchall())

    # -- clock -----------------------------------------------------------------------------------
    def now(self) -> float:
        """Wall-clock seconds plus a persisted offset that tests move with `advance_clock`."""
        row = self.read().execute("SELECT value FROM meta WHERE key = 'clock_offset'").fetchone()
        return time.time() + float(row[0])

    def advance_clock(self, seconds: float) -> None:
        with self.write() as con:
            con.execute("UPDATE meta SET value = CAST(CAST(value AS REAL) + ? AS TEXT) WHERE key = 'clock_offset'",
                        (float(seconds),))

    # -- OAuth -----------------------------------------------------------------------------------
    def _access_token(self, now: float) -> str:
        header = {"alg": "RS256", "kid": "1CAF8E66772D6DC028D6726FD0261581570EFC19", "typ": "JWT"}
        payload = {
            "nbf": int(now), "exp": int(now) + ACCESS_TTL_S, "iss": "https://identity.xero.com",
            "aud": "https://identity.xero.com/resources", "client_id": self.client_id,
            "sub": hashlib.sha256(self.client_id.encode()).hexdigest()[:32], "auth_time": int(now),
            "xero_userid": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.client_id)),
            "global_session_id": secrets.token_hex(16), "jti": secrets.token_hex(16),
            "authentication_event_id": self.auth_event_id, "scope": SCOPES,
        }
        return ".".join((_b64url(orjson.dumps(header)), _b64url(orjson.dumps(payload)),
                         _b64url(secrets.token_bytes(64))))

    def refresh(self, client_id: str | None, client_secret: str | None, refresh_token: str | None
                ) -> tuple[int, dict]:
        """The `refresh_token` grant: rotate, honouring the grace period of the previous token."""
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
                self._bump(con, "refresh_forks")  # a second use: the chain now has two live heads
            access, new_refresh = self._access_token(now), secrets.token_hex(32)
            con.execute("INSERT INTO tokens (token, kind, issued_at, expires_at, parent) VALUES (?, 'access', ?, ?, ?)",
                        (access, now, now + ACCESS_TTL_S, refresh_token))
            con.execute("INSERT INTO tokens (token, kind, issued_at, expires_at, parent) "
                        "VALUES (?, 'refresh', ?, ?, ?)", (new_refresh, now, now + REFRESH_TTL_S, refresh_token))
            self._bump(con, "token_refreshes")
        with self._cache_lock:
            self._access_cache[access] = now + ACCESS_TTL_S
        return 200, {"id_token": None, "access_token": access, "expires_in": ACCESS_TTL_S, "token_type": "Bearer",
                     "refresh_token": new_refresh, "scope": " ".join(SCOPES)}

    def access_token_valid(self, token: str) -> bool:
        with self._cache_lock:
            expires = self._access_cache.get(token)
        if expires is None:
            row = self.read().execute("SELECT expires_at FROM tokens WHERE token = ? AND kind = 'access'",
                                      (token,)).fetchone()
            if row is None:
                return False
            expires = row[0]
            with self._cache_lock:
                self._access_cache[token] = expires
        return expires > self.now()

    def refresh_token_uses(self) -> dict[str, int]:
        return dict(self.read().execute("SELECT token, uses FROM tokens WHERE kind = 'refresh'").fetchall())

    # -- idempotency -----------------------------------------------------------------------------
    def idempotent_write(self, key: str | None, fingerprint: str, fn: Callable[[sqlite3.Connection], tuple[int, bytes]]
                         ) -> tuple[int, bytes, bool]:
        """Run `fn` in one write transaction; with a key, replay a stored answer for the same request.

        Returns (status, body, replayed).  Raises `Conflict` when the key was used for another request.
        """
        with self.write() as con:
            if key:
                row = con.execute("SELECT fingerprint, status, body, created_at FROM idempotency "
                                  "WHERE tenant_id = ? AND key = ?", (self.tenant_id, key)).fetchone()
                if row is not None and self.now() - row[3] <= IDEMPOTENCY_WINDOW_S:
                    if row[0] != fingerprint:
                        raise Conflict(key)
                    self._bump(con, "idempotent_replays")
                    return row[1], row[2], True
                if row is not None:
                    con.execute("DELETE FROM idempotency WHERE tenant_id = ? AND key = ?", (self.tenant_id, key))
            status, body = fn(con)
            if key:
                con.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                            (self.tenant_id, key, fingerprint, status, body, self.now()))
            return status, body, False

    # -- contacts --------------------------------------------------------------------------------
    def _contact_row(self, con: sqlite3.Connection, column: str, value: str) -> dict | None:
        row = con.execute(f"SELECT doc FROM contacts WHERE tenant_id = ? AND {column} = ? ORDER BY seq LIMIT 1",
                          (self.tenant_id, value)).fetchone()
        return loads(row[0]) if row else None

    def _active_name_owner(self, con: sqlite3.Connection, name: str) -> str | None:
        row = con.execute("SELECT contact_id FROM contacts WHERE tenant_id = ? AND status = 'ACTIVE' "
                          "AND name = ? COLLATE NOCASE", (self.tenant_id, name)).fetchone()
        return row[0] if row else None

    def save_contacts(self, con: sqlite3.Connection, elements: list[Any], *, create_only: bool,
                      forced_id: str | None = None) -> list[ElementResult]:
        results = []
        for element in elements:
            if not isinstance(element, dict):
                results.append(ElementResult(False, _validation_echo(element, ["A contact must be an object"])))
                continue
            if forced_id:
                element = {**element, "ContactID": forced_id}
            existing = None
            if not create_only:
                if element.get("ContactID"):
                    existing = self._contact_row(con, "contact_id", str(element["ContactID"]))
                    if existing is None:
                        results.append(ElementResult(False, _validation_echo(
                            element, [f"The contact with ContactID '{element['ContactID']}' does not exist."])))
                        continue
                elif element.get("ContactNumber"):
                    existing = self._contact_row(con, "contact_number", str(element["ContactNumber"]))
            doc, errors = self._build_contact(con, element, existing)
            if errors:
                results.append(ElementResult(False, _validation_echo(element, errors, "ContactID")))
                continue
            self._store_contact(con, doc)
            self._bump(con, "contacts_updated" if existing else "contacts_created")
            results.append(ElementResult(True, {**doc, "StatusAttributeString": "OK"}))
        return results

    def _build_contact(self, con: sqlite3.Connection, element: dict, existing: dict | None
                       ) -> tuple[dict, list[str]]:
        errors: list[str] = []
        doc = copy.deepcopy(existing) if existing else {
            "ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE", "Name": "", "Addresses": [],
            "Phones": [], "ContactGroups": [], "ContactPersons": [], "IsSupplier": False, "IsCustomer": False,
            "HasAttachments": False, "HasValidationErrors": False,
        }
        for field in ("Name", "ContactNumber", "AccountNumber", "FirstName", "LastName", "EmailAddress",
                      "TaxNumber", "DefaultCurrency", "ContactStatus", "Addresses", "Phones"):
            if field in element and element[field] is not None:
                doc[field] = element[field]
        name = str(doc.get("Name") or "").strip()
        if not name:
            errors.append("The contact name must be specified.")
        elif len(name) > 255:
            errors.append("The contact name must be 255 characters or less.")
        else:
            doc["Name"] = name
            owner = self._active_name_owner(con, name)
            if owner and owner != doc["ContactID"] and doc["ContactStatus"] == "ACTIVE":
                errors.append(f"The contact name {name} is already assigned to another contact. "
                              "The contact name must be unique across all active contacts.")
        email = doc.get("EmailAddress")
        if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(email)):
            errors.append("Email address must be valid.")
        if doc.get("DefaultCurrency") and doc["DefaultCurrency"] not in ref.ENABLED_CURRENCIES:
            errors.append(f"Organisation is not subscribed to currency {doc['DefaultCurrency']}")
        if doc.get("ContactStatus") not in ("ACTIVE", "ARCHIVED"):
            errors.append("ContactStatus must be ACTIVE or ARCHIVED.")
        doc["UpdatedDateUTC"] = _now_ms(self.now())
        return doc, errors

    def _store_contact(self, con: sqlite3.Connection, doc: dict) -> None:
        con.execute(
            "INSERT INTO contacts (contact_id, tenant_id, name, contact_number, email, status, is_customer, "
            "updated_ms, doc, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(contact_id) DO UPDATE SET name = excluded.name, contact_number = excluded.contact_number, "
            "email = excluded.email, status = excluded.status, is_customer = excluded.is_customer, "
            "updated_ms = excluded.updated_ms, doc = excluded.doc, json = excluded.json",
            (doc["ContactID"], self.tenant_id, doc["Name"], doc.get("ContactNumber"), doc.get("EmailAddress"),
             doc["ContactStatus"], int(bool(doc.get("IsCustomer"))), doc["UpdatedDateUTC"], dumps(doc).decode(),
             dumps(render_contact(doc))))

    def list_contacts(self, *, where: str | None, ids: list[str], include_archived: bool, modified_since_ms: int | None,
                      order: str | None, page: int | None, page_size: int) -> tuple[list[bytes], int]:
        sql, params = compile_where(where, CONTACT_FIELDS)
        clauses, args = ["tenant_id = ?", sql], [self.tenant_id, *params]
        if ids:
            clauses.append(f"contact_id IN ({','.join('?' * len(ids))})")
            args += ids
        if not include_archived:
            clauses.append("status <> 'ARCHIVED'")
        if modified_since_ms is not None:
            clauses.append("updated_ms >= ?")
            args.append(modified_since_ms)
        return self._page("contacts", "json", clauses, args, _order_sql(order, CONTACT_ORDER), page, page_size)

    def get_contact(self, contact_id: str) -> bytes | None:
        row = self.read().execute("SELECT json FROM contacts WHERE tenant_id = ? AND contact_id = ?",
                                  (self.tenant_id, contact_id)).fetchone()
        return row[0] if row else None

    # -- invoices --------------------------------------------------------------------------------
    def _invoice_doc(self, con: sqlite3.Connection, column: str, value: str) -> dict | None:
        row = con.execute(f"SELECT doc FROM invoices WHERE tenant_id = ? AND {column} = ? ORDER BY seq LIMIT 1",
                          (self.tenant_id, value)).fetchone()
        return loads(row[0]) if row else None

    def find_invoice(self, ref_: str) -> dict | None:
        """By InvoiceID, else by InvoiceNumber (as `GET /Invoices/{InvoiceID or InvoiceNumber}`)."""
        con = self.read()
        found = self._invoice_doc(con, "invoice_id", ref_) or self._invoice_doc(con, "invoice_number", ref_)
        return found if found is not None and "CREDIT" not in found["Type"] else None

    def save_invoices(self, con: sqlite3.Connection, elements: list[Any], *, create_only: bool, unitdp: int,
                      forced_id: str | None = None) -> list[ElementResult]:
        """PUT (create only) / POST (create or update by InvoiceID or InvoiceNumber) semantics."""
        results = []
        for element in elements:
            if not isinstance(element, dict):
                results.append(ElementResult(False, _validation_echo(element, ["An invoice must be an object"])))
                continue
            if forced_id:
                element = {**element, "InvoiceID": forced_id}
            existing = None
            if element.get("InvoiceID"):
                existing = self._invoice_doc(con, "invoice_id", str(element["InvoiceID"]))
                if existing is None:
                    results.append(ElementResult(False, _validation_echo(
                        element, [f"Invoice with InvoiceID '{element['InvoiceID']}' could not be found"],
                        "InvoiceID")))
                    continue
            elif not create_only and element.get("InvoiceNumber"):
                row = con.execute("SELECT doc FROM invoices WHERE tenant_id = ? AND invoice_number = ? "
                                  "AND type = ? ORDER BY seq LIMIT 1",
                                  (self.tenant_id, str(element["InvoiceNumber"]),
                                   element.get("Type") or "ACCREC")).fetchone()
                existing = loads(row[0]) if row else None
            if create_only and existing is not None:
                results.append(ElementResult(False, _validation_echo(
                    element, ["PUT creates invoices only; use POST to update an existing invoice"], "InvoiceID")))
                continue
            doc, errors = self._build_invoice(con, element, existing, unitdp)
            if errors:
                results.append(ElementResult(False, _validation_echo(element, errors, "InvoiceID")))
                continue
            self._store_invoice(con, doc)
            kind = "credit_notes" if "CREDIT" in doc["Type"] else "invoices"
            if existing is None:
                self._bump(con, f"{kind}_created")
            elif doc["Status"] == "VOIDED" and existing["Status"] != "VOIDED":
                self._bump(con, f"{kind}_voided")
            else:
                self._bump(con, f"{kind}_updated")
            results.append(ElementResult(True, {**render_invoice(doc, unitdp=unitdp), "StatusAttributeString": "OK"}))
        return results

    def _resolve_contact(self, con: sqlite3.Connection, contact: Any, errors: list[str]) -> dict | None:
        if not isinstance(contact, dict):
            errors.append("A Contact must be specified for this type of transaction")
            return None
        if contact.get("ContactID"):
            found = self._contact_row(con, "contact_id", str(contact["ContactID"]))
            if found is None:
                errors.append(f"The contact with ContactID '{contact['ContactID']}' does not exist.")
        elif contact.get("ContactNumber"):
            found = self._contact_row(con, "contact_number", str(contact["ContactNumber"]))
            if found is None:
                errors.append(f"The contact with ContactNumber '{contact['ContactNumber']}' does not exist.")
        elif contact.get("Name"):
            owner = self._active_name_owner(con, str(contact["Name"]).strip())
            if owner:
                found = self._contact_row(con, "contact_id", owner)
            else:  # Xero creates a contact from a name it does not know
                found, contact_errors = self._build_contact(con, contact, None)
                if contact_errors:
                    errors.extend(contact_errors)
                    return None
                self._store_contact(con, found)
                self._bump(con, "contacts_created")
        else:
            errors.append("A Contact must be specified for this type of transaction")
            return None
        if found is not None and found.get("ContactStatus") == "ARCHIVED":
            errors.append(f"The contact '{found['Name']}' is archived and cannot be used on a new transaction.")
        return found

    def _build_invoice(self, con: sqlite3.Connection, el: dict, existing: dict | None, unitdp: int
                       ) -> tuple[dict, list[str]]:
        errors: list[str] = []
        if existing is not None:
            old = existing["Status"]
            if old == "PAID":
                return existing, ["This document cannot be edited as it has a payment or credit note allocated to it."]
            if old in ("VOIDED", "DELETED"):
                return existing, ["Invoice not of valid status for modification"]
            if el.get("Type") and el["Type"] != existing["Type"]:
                return existing, ["The Type of an invoice cannot be changed"]
            new = el.get("Status") or old
            if new == "VOIDED":
                if old != "AUTHORISED" and old != "SUBMITTED":
                    return existing, ["Invoice not of valid status for modification"]
                if existing["AmountPaid"] or existing.get("AmountCredited"):
                    return existing, ["This document cannot be voided as it has a payment or credit note "
                                      "allocated to it."]
                doc = copy.deepcopy(existing)
                doc["Status"] = "VOIDED"
                doc["AmountDue"] = Decimal("0.00")
                doc["UpdatedDateUTC"] = _now_ms(self.now())
                return doc, []
            if new == "DELETED":
                if old not in ("DRAFT", "SUBMITTED"):
                    return existing, ["Invoice not of valid status for modification"]
                doc = copy.deepcopy(existing)
                doc["Status"], doc["AmountDue"] = "DELETED", Decimal("0.00")
                doc["UpdatedDateUTC"] = _now_ms(self.now())
                return doc, []
            if old == "AUTHORISED" and new in ("DRAFT", "SUBMITTED"):
                return existing, ["Invoice not of valid status for modification"]
            doc = copy.deepcopy(existing)
        else:
            kind = el.get("Type")
            if not kind:
                errors.append("Invoice Type must be specified")
            elif kind not in ("ACCREC", "ACCPAY", "ACCRECCREDIT", "ACCPAYCREDIT"):
                errors.append(f"Invoice Type '{kind}' is not supported")
            doc = {"Type": kind or "", "InvoiceID": str(uuid.uuid4()), "Status": "DRAFT",
                   "LineAmountTypes": "Exclusive", "CurrencyCode": ref.BASE_CURRENCY, "Reference": "",
                   "LineItems": [], "AmountPaid": Decimal("0.00"), "AmountCredited": Decimal("0.00"),
                   "SentToContact": False}
            status = el.get("Status") or "DRAFT"
            if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
                errors.append(f"Invoice not of valid status for creation: {status}")
        if "Contact" in el or existing is None:
            contact = self._resolve_contact(con, el.get("Contact"), errors)
            if contact is not None:
                doc["Contact"] = {"ContactID": contact["ContactID"], "ContactNumber": contact.get("ContactNumber"),
                                  "Name": contact["Name"]}
        for field in ("Reference", "Status", "LineAmountTypes", "CurrencyCode", "Url", "BrandingThemeID",
                      "SentToContact"):
            if field in el and el[field] is not None:
                doc[field] = el[field]
        if doc["LineAmountTypes"] not in ("Exclusive", "Inclusive", "NoTax"):
            errors.append(f"LineAmountTypes '{doc['LineAmountTypes']}' is not valid")
        if doc["CurrencyCode"] not in ref.ENABLED_CURRENCIES:
            errors.append(f"Organisation is not subscribed to currency {doc['CurrencyCode']}")
        for field in ("Date", "DueDate"):
            if el.get(field):
                try:
                    doc[field] = parse_date(el[field]).isoformat()
                except ValueError:
                    errors.append(f"{field} '{el[field]}' is not a valid date")
        doc.setdefault("Date", datetime.fromtimestamp(self.now(), tz=timezone.utc).date().isoformat())
        if doc["Status"] in ("AUTHORISED", "SUBMITTED") and not doc.get("DueDate") and "CREDIT" not in doc["Type"]:
            errors.append("Due Date is required for an approved invoice")
        if doc.get("DueDate") and doc["DueDate"] < doc["Date"]:
            errors.append("Due Date must not be earlier than the invoice Date")
        if "CurrencyRate" in el and el["CurrencyRate"] is not None:
            rate = _number(el["CurrencyRate"], "CurrencyRate", errors)
            if rate is not None:
                doc["CurrencyRate"] = rate
        elif existing is None or "CurrencyCode" in el:
            doc["CurrencyRate"] = ref.DEFAULT_RATES.get(doc["CurrencyCode"], Decimal("1.000000"))
        if "LineItems" in el:
            if not isinstance(el["LineItems"], list):
                errors.append("LineItems must be a list")
            else:
                doc["LineItems"] = [self._build_line(raw, doc, i, unitdp, errors)
                                    for i, raw in enumerate(el["LineItems"], start=1)]
        if doc["Status"] in ("AUTHORISED", "SUBMITTED"):
            if not doc["LineItems"]:
                errors.append("An approved invoice must have at least one line item")
            if any(not line.get("AccountCode") for line in doc["LineItems"]):
                errors.append("An account code must be specified on every line of an approved invoice")
        self._number_invoice(con, el, doc, existing, errors)
        _compute_totals(doc)
        doc["UpdatedDateUTC"] = _now_ms(self.now())
        if doc["Type"] == "ACCREC" and doc["Status"] == "AUTHORISED" and "Contact" in doc and not errors:
            self._mark_customer(con, doc["Contact"]["ContactID"])
        return doc, errors

    def _number_invoice(self, con: sqlite3.Connection, el: dict, doc: dict, existing: dict | None,
                        errors: list[str]) -> None:
        if el.get("InvoiceNumber"):
            doc["InvoiceNumber"] = str(el["InvoiceNumber"]).strip()
            if len(doc["InvoiceNumber"]) > 255:
                errors.append("InvoiceNumber must be 255 characters or less")
        if doc["Type"] not in ("ACCREC", "ACCRECCREDIT"):
            doc.setdefault("InvoiceNumber", "")
            return
        if not doc.get("InvoiceNumber"):
            while True:  # Xero's automatic sequence
                nxt = con.execute("SELECT COALESCE(MAX(value), 0) + 1 FROM counters WHERE name = 'auto_number'"
                                  ).fetchone()[0]
                self._bump(con, "auto_number")
                candidate = f"{'CN' if 'CREDIT' in doc['Type'] else 'INV'}-{nxt:04d}"
                if not con.execute("SELECT 1 FROM invoices WHERE tenant_id = ? AND invoice_number = ? "
                                   "AND type = ?", (self.tenant_id, candidate, doc["Type"])).fetchone():
                    doc["InvoiceNumber"] = candidate
                    return
        clash = con.execute("SELECT invoice_id FROM invoices WHERE tenant_id = ? AND invoice_number = ? "
                            "AND type = ? AND invoice_id <> ?",
                            (self.tenant_id, doc["InvoiceNumber"], doc["Type"], doc["InvoiceID"])).fetchone()
        if clash:
            errors.append("Credit Note # must be unique." if "CREDIT" in doc["Type"] else "Invoice # must be unique.")

    def _build_line(self, raw: Any, doc: dict, position: int, unitdp: int, errors: list[str]) -> dict:
        if not isinstance(raw, dict):
            errors.append(f"Line {position}: a line item must be an object")
            return {}
        line: dict[str, Any] = {"LineItemID": str(raw.get("LineItemID") or uuid.uuid4())}
        if raw.get("Description") is not None:
            line["Description"] = str(raw["Description"])
        if raw.get("ItemCode"):
            line["ItemCode"] = str(raw["ItemCode"])
        if not line.get("Description") and not line.get("ItemCode"):
            errors.append("Description is required for a line item without an item code")
        qty = _number(raw.get("Quantity", 1), "Quantity", errors)
        unit = _number(raw.get("UnitAmount", 0), "UnitAmount", errors)
        if qty is None or unit is None:
            return line
        line["Quantity"] = qty.quantize(Decimal("0.0001"))
        line["UnitAmount"] = unit.quantize(Decimal("0.0001") if unitdp == 4 else Decimal("0.01"))
        gross = line["Quantity"] * line["UnitAmount"]
        if raw.get("DiscountAmount") is not None:
            discount = _number(raw["DiscountAmount"], "DiscountAmount", errors) or Decimal(0)
            line["DiscountAmount"] = money(discount)
            line_amount = money(gross - line["DiscountAmount"])
        elif raw.get("DiscountRate") is not None:
            rate = _number(raw["DiscountRate"], "DiscountRate", errors) or Decimal(0)
            line["DiscountRate"] = rate
            line_amount = money(gross * (1 - rate / 100))
            line["DiscountAmount"] = money(gross) - line_amount
        else:
            line_amount = money(gross)
        line["LineAmount"] = line_amount
        if raw.get("LineAmount") is not None:
            given = _number(raw["LineAmount"], "LineAmount", errors)
            if given is not None and abs(given - line_amount) > Decimal("0.01"):
                errors.append(f"The line total {given} does not match the expected line total {line_amount}")
        account = None
        if raw.get("AccountCode"):
            line["AccountCode"] = str(raw["AccountCode"])
            account = ref.ACCOUNTS.get(line["AccountCode"])
            if account is None or not account.usable_on_invoice_lines:
                errors.append(f"Account code '{line['AccountCode']}' is not a valid code for this document.")
        tax_type = raw.get("TaxType") or (account.tax_type if account else None)
        tax = ref.TAX_RATES.get(tax_type) if tax_type else None
        if tax_type:
            line["TaxType"] = str(tax_type)
            if tax is None:
                errors.append(f"The TaxType code '{tax_type}' does not exist or cannot be used with this type "
                              "of transaction.")
            elif not (tax.revenue if doc.get("Type") in ("ACCREC", "ACCRECCREDIT") else tax.expenses):
                errors.append(f"The TaxType code '{tax_type}' cannot be used with account code "
                              f"'{line.get('AccountCode', '')}'.")
        if doc["LineAmountTypes"] == "NoTax":
            line["TaxAmount"] = Decimal("0.00")
        elif raw.get("TaxAmount") is not None:  # the caller's tax (e.g. the platform's per-line truth) is kept
            given_tax = _number(raw["TaxAmount"], "TaxAmount", errors)
            line["TaxAmount"] = money(given_tax) if given_tax is not None else Decimal("0.00")
        elif tax is not None:
            fraction = tax.fraction
            if doc["LineAmountTypes"] == "Inclusive":
                line["TaxAmount"] = money(line_amount * fraction / (1 + fraction))
            else:
                line["TaxAmount"] = money(line_amount * fraction)
        else:
            line["TaxAmount"] = Decimal("0.00")
        if raw.get("Tracking"):
            line["Tracking"] = raw["Tracking"]
        return line

    def _mark_customer(self, con: sqlite3.Connection, contact_id: str) -> None:
        contact = self._contact_row(con, "contact_id", contact_id)
        if contact is not None and not contact.get("IsCustomer"):
            contact["IsCustomer"] = True
            self._store_contact(con, contact)

    def _store_invoice(self, con: sqlite3.Connection, doc: dict) -> None:
        contact = doc.get("Contact") or {}
        con.execute(
            "INSERT INTO invoices (invoice_id, tenant_id, type, invoice_number, reference, status, contact_id, "
            "contact_number, contact_name, currency, date, due_date, updated_ms, doc, json_full2, json_full4, "
            "json_summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(invoice_id) DO UPDATE SET invoice_number = excluded.invoice_number, "
            "reference = excluded.reference, status = excluded.status, contact_id = excluded.contact_id, "
            "contact_number = excluded.contact_number, contact_name = excluded.contact_name, "
            "currency = excluded.currency, date = excluded.date, due_date = excluded.due_date, "
            "updated_ms = excluded.updated_ms, doc = excluded.doc, json_full2 = excluded.json_full2, "
            "json_full4 = excluded.json_full4, json_summary = excluded.json_summary",
            (doc["InvoiceID"], self.tenant_id, doc["Type"], doc.get("InvoiceNumber"), doc.get("Reference"),
             doc["Status"], contact.get("ContactID", ""), contact.get("ContactNumber"), contact.get("Name"),
             doc["CurrencyCode"], doc.get("Date"), doc.get("DueDate"), doc["UpdatedDateUTC"], dumps(doc).decode(),
             dumps(render_invoice(doc, unitdp=2)), dumps(render_invoice(doc, unitdp=4)),
             dumps(render_invoice(doc, unitdp=2, lines=False))))

    def list_invoices(self, *, where: str | None, ids: list[str], numbers: list[str], statuses: list[str],
                      contact_ids: list[str], modified_since_ms: int | None, order: str | None,
                      page: int | None, page_size: int, unitdp: int, summary_only: bool,
                      duplicate_page: bool = False) -> tuple[list[bytes], int]:
        sql, params = compile_where(where, INVOICE_FIELDS)
        clauses, args = ["tenant_id = ?", "type IN ('ACCREC', 'ACCPAY')", sql], [self.tenant_id, *params]
        for column, values in (("invoice_id", ids), ("invoice_number", numbers), ("status", statuses),
                               ("contact_id", contact_ids)):
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                args += values
        if modified_since_ms is not None:
            clauses.append("updated_ms >= ?")
            args.append(modified_since_ms)
        # Without `page`, Xero answers every match but without line items.
        column = "json_summary" if (summary_only or page is None) else ("json_full4" if unitdp == 4 else "json_full2")
        return self._page("invoices", column, clauses, args, _order_sql(order, INVOICE_ORDER), page, page_size,
                          duplicate_page)

    def get_invoice(self, ref_: str, unitdp: int) -> bytes | None:
        column = "json_full4" if unitdp == 4 else "json_full2"
        con = self.read()
        for key in ("invoice_id", "invoice_number"):
            row = con.execute(f"SELECT {column} FROM invoices WHERE tenant_id = ? AND {key} = ? "
                              "AND type IN ('ACCREC', 'ACCPAY') ORDER BY seq LIMIT 1", (self.tenant_id, ref_)).fetchone()
            if row:
                return row[0]
        return None

    def _page(self, table: str, column: str, clauses: list[str], args: list[Any], order_sql: str,
              page: int | None, page_size: int, duplicate_page: bool = False) -> tuple[list[bytes], int]:
        con = self.read()
        where = " AND ".join(clauses)
        total = con.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", args).fetchone()[0]
        if page is None:
            rows = con.execute(f"SELECT {column} FROM {table} WHERE {where} ORDER BY {order_sql}", args).fetchall()
            return [r[0] for r in rows], total
        offset = (page - 1) * page_size
        if duplicate_page and offset > 0:
            # injected fault: the page overlaps the previous one by one record, as if a record had been
            # inserted ahead of it between the two requests; nothing is lost, one record repeats
            offset, limit = offset - 1, page_size + 1
        else:
            limit = page_size
        rows = con.execute(f"SELECT {column} FROM {table} WHERE {where} ORDER BY {order_sql} LIMIT ? OFFSET ?",
                           [*args, limit, offset]).fetchall()
        return [r[0] for r in rows], total

    # -- helpers for tests and the sandbox -------------------------------------------------------
    def invoice_docs(self) -> list[dict]:
        rows = self.read().execute("SELECT doc FROM invoices WHERE tenant_id = ? AND type IN ('ACCREC', 'ACCPAY') "
                                   "ORDER BY seq", (self.tenant_id,)).fetchall()
        return [loads(r[0]) for r in rows]

    def credit_note_docs(self) -> list[dict]:
        rows = self.read().execute("SELECT doc FROM invoices WHERE tenant_id = ? AND type LIKE '%CREDIT' "
                                   "ORDER BY seq", (self.tenant_id,)).fetchall()
        return [loads(r[0]) for r in rows]

    def contact_docs(self) -> list[dict]:
        rows = self.read().execute("SELECT doc FROM contacts WHERE tenant_id = ? ORDER BY seq",
                                   (self.tenant_id,)).fetchall()
        return [loads(r[0]) for r in rows]

    def record_payment(self, invoice_number: str, amount: Decimal) -> dict:
        """Apply a payment directly (the sandbox's stand-in for `PUT /Payments`)."""
        with self.write() as con:
            doc = self._invoice_doc(con, "invoice_number", invoice_number)
            if doc is None:
                raise KeyError(invoice_number)
            doc["AmountPaid"] = money(doc["AmountPaid"] + amount)
            _compute_totals(doc)
            if doc["AmountDue"] <= 0:
                doc["Status"] = "PAID"
                doc["FullyPaidOnDate"] = datetime.fromtimestamp(self.now(), tz=timezone.utc).date().isoformat()
            doc["UpdatedDateUTC"] = _now_ms(self.now())
            self._store_invoice(con, doc)
            return doc


def _number(value: Any, label: str, errors: list[str]) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        errors.append(f"{label} must be a number")
        return None
    try:
        number = to_decimal(value)
    except (InvalidOperation, ValueError):
        errors.append(f"{label} '{value}' is not a valid number")
        return None
    if not number.is_finite():
        errors.append(f"{label} '{value}' is not a valid number")
        return None
    return number


def _compute_totals(doc: dict) -> None:
    lines = [line for line in doc.get("LineItems", []) if "LineAmount" in line]
    line_total = sum((line["LineAmount"] for line in lines), Decimal("0.00"))
    tax = sum((line.get("TaxAmount", Decimal(0)) for line in lines), Decimal("0.00"))
    if doc.get("LineAmountTypes") == "Inclusive":
        total, subtotal = line_total, line_total - tax
    else:
        subtotal, total = line_total, line_total + tax
    doc["SubTotal"], doc["TotalTax"], doc["Total"] = money(subtotal), money(tax), money(total)
    doc["TotalDiscount"] = money(sum((line.get("DiscountAmount", Decimal(0)) for line in lines), Decimal(0)))
    doc.setdefault("AmountPaid", Decimal("0.00"))
    doc.setdefault("AmountCredited", Decimal("0.00"))
    if doc.get("Status") in ("VOIDED", "DELETED"):
        doc["AmountDue"] = Decimal("0.00")
    else:
        doc["AmountDue"] = money(doc["Total"] - doc["AmountPaid"] - doc["AmountCredited"])


def _order_sql(order: str | None, allowed: dict[str, str]) -> str:
    """`order=UpdatedDateUTC DESC, InvoiceNumber` -> SQL; creation order breaks ties (stable pages)."""
    parts = []
    for item in (order or "").split(","):
        words = item.strip().split()
        if not words:
            continue
        column = allowed.get(words[0].lower())
        if column is None:
            raise WhereError(f"order: unsupported field {words[0]!r}")
        direction = words[1].upper() if len(words) > 1 else "ASC"
        if direction not in ("ASC", "DESC"):
            raise WhereError(f"order: {words[1]!r} is not ASC or DESC")
        parts.append(f"{column} {direction}")
    parts.append("seq ASC")
    return ", ".join(parts)


# -- wire rendering ---------------------------------------------------------------------------------
def _wire_date(iso: str | None) -> dict:
    if not iso:
        return {}
    d = date.fromisoformat(iso)
    return {"value": ms_json(d), "string": date_string(d)}


def render_invoice(doc: dict, *, unitdp: int = 2, lines: bool = True) -> dict:
    """A canonical document in Xero's wire shape (MS-JSON dates, 2-dp money)."""
    out: dict[str, Any] = {
        "Type": doc["Type"], "InvoiceID": doc["InvoiceID"], "InvoiceNumber": doc.get("InvoiceNumber", ""),
        "Reference": doc.get("Reference", ""),
        "Payments": [{"PaymentID": p["PaymentID"], "Date": ms_json(date.fromisoformat(p["Date"])), "Amount": p["Amount"],
                      "Reference": p.get("Reference", ""), "HasAccount": True, "HasValidationErrors": False}
                     for p in doc.get("Payments", [])],
        "CreditNotes": [], "Prepayments": [],
        "Overpayments": [], "AmountDue": doc["AmountDue"], "AmountPaid": doc["AmountPaid"],
        "AmountCredited": doc["AmountCredited"], "CurrencyRate": doc.get("CurrencyRate", Decimal("1.000000")),
        "IsDiscounted": bool(doc.get("TotalDiscount")), "HasAttachments": False, "HasErrors": False,
        "Contact": {k: v for k, v in (doc.get("Contact") or {}).items() if v is not None},
    }
    for field in ("Date", "DueDate", "FullyPaidOnDate"):
        wire = _wire_date(doc.get(field))
        if wire:
            out[field] = wire["value"]
            if field != "FullyPaidOnDate":
                out[f"{field}String"] = wire["string"]
    out.update({
        "Status": doc["Status"], "LineAmountTypes": doc["LineAmountTypes"], "SubTotal": doc["SubTotal"],
        "TotalTax": doc["TotalTax"], "Total": doc["Total"], "TotalDiscount": doc.get("TotalDiscount", Decimal("0.00")),
        "UpdatedDateUTC": ms_json(int(doc["UpdatedDateUTC"])), "CurrencyCode": doc["CurrencyCode"],
        "SentToContact": bool(doc.get("SentToContact")),
    })
    if lines:
        unit_q = Decimal("0.0001") if unitdp == 4 else Decimal("0.01")
        rendered = []
        for line in doc.get("LineItems", []):
            item = {k: v for k, v in line.items() if k not in ("UnitAmount", "Quantity")}
            if "Quantity" in line:
                item["Quantity"] = line["Quantity"]
            if "UnitAmount" in line:
                item["UnitAmount"] = money(line["UnitAmount"]) if unitdp != 4 else line["UnitAmount"].quantize(unit_q)
            item.setdefault("Tracking", [])
            rendered.append(item)
        out["LineItems"] = rendered
    return out


def render_contact(doc: dict) -> dict:
    out = {k: v for k, v in doc.items() if k != "UpdatedDateUTC"}
    out["UpdatedDateUTC"] = ms_json(int(doc["UpdatedDateUTC"]))
    return out


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests 'the same' for the Idempotency-Key check."""
    digest = hashlib.sha256()
    for part in (method.upper(), path, "&".join(sorted(query.split("&"))) if query else ""):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(body)
    return digest.hexdigest()


def envelope(now: float, collection: str, items: list[bytes], pagination: dict | None = None,
             extra: dict | None = None) -> bytes:
    """The standard response wrapper around pre-rendered items, assembled as bytes."""
    head: dict[str, Any] = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": "Finance Pipeline Sandbox",
                            "DateTimeUTC": ms_json(int(now * 1000))}
    if pagination is not None:
        head["pagination"] = pagination
    if extra:
        head.update(extra)
    raw = dumps(head)
    return raw[:-1] + b',"' + collection.encode() + b'":[' + b",".join(items) + b"]}"


def json_bytes(obj: Any) -> bytes:
    return dumps(obj)

