"""Manual journals in the emulated Xero organisation (`GET|PUT|POST /ManualJournals`,
`GET|POST /ManualJournals/{ManualJournalID}`), mixed into `XeroStore` (same SQLite file).

The rules Xero applies to a journal: a `Narration`, a valid `Date`, `Status` DRAFT or POSTED
(a posted journal can be edited or VOIDED, a draft DELETED; a voided or deleted one is final), at
least two `JournalLines`, each with a `LineAmount` (positive = debit, negative = credit) and an
`AccountCode` of the chart, a `TaxType` that exists, and debits equal to credits.  Lines are
`NoTax` unless `LineAmountTypes` says otherwise (then each line's tax is computed from its rate
and the journal balances including tax, as Xero does).
"""
from __future__ import annotations

import copy
import sqlite3
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from finance_pipeline.platforms.xero import reference as ref
from finance_pipeline.platforms.xero.where import Field, compile_where
from finance_pipeline.platforms.xero.wire import date_string, dumps, loads, money, ms_json, parse_date

JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS manual_journals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, manual_journal_id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL,
    narration TEXT NOT NULL, status TEXT NOT NULL, date TEXT NOT NULL, updated_ms INTEGER NOT NULL,
    doc TEXT NOT NULL, json BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS manual_journals_narration ON manual_journals (tenant_id, narration);
CREATE INDEX IF NOT EXISTS manual_journals_updated ON manual_journals (tenant_id, updated_ms);
"""
JOURNAL_FIELDS = {
    "Narration": Field("narration"), "Status": Field("status"), "ManualJournalID": Field("manual_journal_id"),
    "Date": Field("date", "date"), "UpdatedDateUTC": Field("updated_ms", "ms"),
}
JOURNAL_ORDER = {"date": "date", "narration": "narration", "updateddateutc": "updated_ms",
                 "manualjournalid": "manual_journal_id", "status": "status"}
LINE_AMOUNT_TYPES = ("NoTax", "Exclusive", "Inclusive")
# status now -> statuses an update may give it
TRANSITIONS = {"DRAFT": {"DRAFT", "POSTED", "DELETED"}, "POSTED": {"POSTED", "VOIDED"},
               "VOIDED": set(), "DELETED": set()}


def render_journal(doc: dict) -> dict:
    d = date.fromisoformat(doc["Date"])
    out = {k: v for k, v in doc.items() if k not in ("Date", "UpdatedDateUTC")}
    out["Date"] = ms_json(d)
    out["DateString"] = date_string(d)
    out["UpdatedDateUTC"] = ms_json(int(doc["UpdatedDateUTC"]))
    return out


class ManualJournalsMixin:
    """Needs from XeroStore: tenant_id, now(), read(), _bump, _page."""

    def _ensure_journal_schema(self, con: sqlite3.Connection) -> None:
        con.executescript(JOURNAL_SCHEMA)

    def _journal_doc(self, con: sqlite3.Connection, journal_id: str) -> dict | None:
        row = con.execute("SELECT doc FROM manual_journals WHERE tenant_id = ? AND manual_journal_id = ?",
                          (self.tenant_id, journal_id)).fetchone()  # type: ignore[attr-defined]
        return loads(row[0]) if row else None

    def _store_journal(self, con: sqlite3.Connection, doc: dict) -> None:
        con.execute(
            "INSERT INTO manual_journals (manual_journal_id, tenant_id, narration, status, date, updated_ms, doc, "
            "json) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(manual_journal_id) DO UPDATE SET "
            "narration = excluded.narration, status = excluded.status, date = excluded.date, "
            "updated_ms = excluded.updated_ms, doc = excluded.doc, json = excluded.json",
            (doc["ManualJournalID"], self.tenant_id, doc["Narration"], doc["Status"],  # type: ignore[attr-defined]
             doc["Date"], doc["UpdatedDateUTC"], dumps(doc).decode(), dumps(render_journal(doc))))

    def save_manual_journals(self, con: sqlite3.Connection, elements: list[Any], *, create_only: bool,
                             forced_id: str | None = None) -> list:
        from finance_pipeline.platforms.xero.emulator_store import ElementResult, _validation_echo

        results = []
        now_ms = int(self.now() * 1000)  # type: ignore[attr-defined]
        for element in elements:
            if not isinstance(element, dict):
                results.append(ElementResult(False, _validation_echo(element, ["A manual journal must be an object"])))
                continue
            existing = None
            journal_id = forced_id or element.get("ManualJournalID")
            if journal_id:
                existing = self._journal_doc(con, str(journal_id))
                if existing is None:
                    results.append(ElementResult(False, _validation_echo(
                        element, [f"Manual journal with ManualJournalID '{journal_id}' could not be found"],
                        "ManualJournalID")))
                    continue
                if create_only:
                    results.append(ElementResult(False, _validation_echo(
                        element, ["PUT creates manual journals; use POST to update one"], "ManualJournalID")))
                    continue
            doc, errors = self._build_journal(element, existing, now_ms)
            if errors:
                results.append(ElementResult(False, _validation_echo(element, errors, "ManualJournalID")))
                continue
            self._store_journal(con, doc)
            self._bump(con, "manual_journals_updated" if existing else "manual_journals_created")  # type: ignore
            results.append(ElementResult(True, {**render_journal(doc), "StatusAttributeString": "OK"}))
        return results

    def _build_journal(self, el: dict, existing: dict | None, now_ms: int) -> tuple[dict, list[str]]:
        from finance_pipeline.platforms.xero.emulator_store import _number

        errors: list[str] = []
        base = copy.deepcopy(existing) if existing else {}
        status = str(el.get("Status") or base.get("Status") or "DRAFT").upper()
        if existing is not None:
            if status not in TRANSITIONS.get(existing["Status"], set()):
                return {}, [f"A {existing['Status'].lower()} manual journal cannot be changed to {status}"]
            if status in ("VOIDED", "DELETED"):  # only the status moves
                base["Status"], base["UpdatedDateUTC"] = status, now_ms
                return base, []
        elif status not in ("DRAFT", "POSTED"):
            errors.append(f"Status '{status}' is not valid for a new manual journal (DRAFT or POSTED)")
        narration = el.get("Narration", base.get("Narration"))
        if not isinstance(narration, str) or not narration.strip():
            errors.append("Narration must be specified")
        try:
            on = parse_date(el["Date"]).isoformat() if el.get("Date") else base.get("Date")
        except ValueError:
            on = None
            errors.append(f"Date '{el.get('Date')}' is not a valid date")
        if on is None and not errors:
            on = date.fromtimestamp(now_ms / 1000).isoformat()
        amount_types = str(el.get("LineAmountTypes") or base.get("LineAmountTypes") or "NoTax")
        if amount_types not in LINE_AMOUNT_TYPES:
            errors.append(f"LineAmountTypes '{amount_types}' is not valid")
        raw_lines = el.get("JournalLines") if "JournalLines" in el else base.get("JournalLines")
        if not isinstance(raw_lines, list) or len(raw_lines) < 2:
            errors.append("A manual journal must have at least two journal lines")
            raw_lines = raw_lines if isinstance(raw_lines, list) else []
        lines = []
        for position, raw in enumerate(raw_lines, start=1):
            if not isinstance(raw, dict):
                errors.append(f"Journal line {position}: a journal line must be an object")
                continue
            amount = _number(raw.get("LineAmount"), "LineAmount", errors)
            if amount is None:
                errors.append(f"Journal line {position}: LineAmount must be specified")
                continue
            code = str(raw.get("AccountCode") or "")
            account = ref.ACCOUNTS.get(code) or next(
                (a for a in ref.ACCOUNTS.values() if a.account_id == raw.get("AccountID")), None)
            if account is None:
                errors.append(f"Account code '{code}' is not a valid code for this document.")
                continue
            tax_type = str(raw.get("TaxType") or (account.tax_type if amount_types != "NoTax" else "NONE"))
            tax = ref.TAX_RATES.get(tax_type)
            if tax is None:
                errors.append(f"The TaxType code '{tax_type}' does not exist or cannot be used with this type "
                              "of transaction.")
                continue
            line_amount = money(amount)
            if amount_types == "NoTax":
                tax_amount = Decimal("0.00")
            elif amount_types == "Inclusive":
                tax_amount = money(line_amount * tax.fraction / (1 + tax.fraction))
            else:
                tax_amount = money(line_amount * tax.fraction)
            line = {"LineAmount": line_amount, "AccountCode": account.code, "AccountID": account.account_id,
                    "TaxType": tax_type, "TaxAmount": tax_amount, "IsBlank": False}
            if raw.get("Description") is not None:
                line["Description"] = str(raw["Description"])
            if raw.get("Tracking"):
                line["Tracking"] = raw["Tracking"]
            lines.append(line)
        if not errors:
            debits = sum((ln["LineAmount"] + (ln["TaxAmount"] if amount_types == "Exclusive" else 0)
                          for ln in lines if ln["LineAmount"] > 0), Decimal("0.00"))
            credits = -sum((ln["LineAmount"] + (ln["TaxAmount"] if amount_types == "Exclusive" else 0)
                            for ln in lines if ln["LineAmount"] < 0), Decimal("0.00"))
            if money(debits) != money(credits):
                errors.append(f"The total debits ({money(debits)}) must equal total credits ({money(credits)})")
        if errors:
            return {}, errors
        doc = {"ManualJournalID": base.get("ManualJournalID") or str(uuid.uuid4()), "Narration": narration.strip(),
               "Date": on, "LineAmountTypes": amount_types, "Status": status,
               "ShowOnCashBasisReports": bool(el.get("ShowOnCashBasisReports", base.get("ShowOnCashBasisReports",
                                                                                         True))),
               "HasAttachments": False, "UpdatedDateUTC": now_ms, "JournalLines": lines}
        if el.get("Url") or base.get("Url"):
            doc["Url"] = str(el.get("Url") or base.get("Url"))
        return doc, []

    def list_manual_journals(self, *, where: str | None, modified_since_ms: int | None, order: str | None,
                             page: int | None, page_size: int) -> tuple[list[bytes], int]:
        from finance_pipeline.platforms.xero.emulator_store import _order_sql

        sql, params = compile_where(where, JOURNAL_FIELDS)
        clauses, args = ["tenant_id = ?", sql], [self.tenant_id, *params]  # type: ignore[attr-defined]
        if modified_since_ms is not None:
            clauses.append("updated_ms >= ?")
            args.append(modified_since_ms)
        return self._page("manual_journals", "json", clauses, args,  # type: ignore[attr-defined]
                          _order_sql(order, JOURNAL_ORDER), page, page_size)

    def get_manual_journal(self, journal_id: str) -> bytes | None:
        row = self.read().execute(  # type: ignore[attr-defined]
            "SELECT json FROM manual_journals WHERE tenant_id = ? AND manual_journal_id = ?",
            (self.tenant_id, journal_id)).fetchone()  # type: ignore[attr-defined]
        return row[0] if row else None

    def manual_journal_docs(self) -> list[dict]:
        rows = self.read().execute("SELECT doc FROM manual_journals WHERE tenant_id = ? ORDER BY seq",  # type: ignore
                                   (self.tenant_id,)).fetchall()  # type: ignore[attr-defined]
        return [loads(r[0]) for r in rows]
