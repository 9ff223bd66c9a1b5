"""Payments in the emulated Xero organisation (`GET|PUT|POST /Payments`, `POST /Payments/{PaymentID}`).

Kept in the same SQLite file as the invoices (`emulator_store.py`), mixed into `XeroStore`.  The
rules Xero applies: the document must be an AUTHORISED sales invoice, the amount positive and no
more than the amount due, the account a bank account or one with payments enabled, a valid date;
a payment cannot be edited, only deleted (`{"Status": "DELETED"}`), which re-opens the invoice.
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

PAYMENT_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, payment_id TEXT NOT NULL UNIQUE, tenant_id TEXT NOT NULL,
    invoice_id TEXT NOT NULL, invoice_number TEXT, reference TEXT, status TEXT NOT NULL, date TEXT NOT NULL,
    updated_ms INTEGER NOT NULL, doc TEXT NOT NULL, json BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS payments_reference ON payments (tenant_id, reference);
CREATE INDEX IF NOT EXISTS payments_invoice ON payments (tenant_id, invoice_id);
CREATE INDEX IF NOT EXISTS payments_updated ON payments (tenant_id, updated_ms);
"""
PAYMENT_FIELDS = {
    "Reference": Field("reference"), "Status": Field("status"), "PaymentID": Field("payment_id"),
    "Invoice.InvoiceID": Field("invoice_id"), "Invoice.InvoiceNumber": Field("invoice_number"),
    "Date": Field("date", "date"), "UpdatedDateUTC": Field("updated_ms", "ms"),
}
PAYMENT_ORDER = {"date": "date", "reference": "reference", "updateddateutc": "updated_ms", "paymentid": "payment_id"}


def _target(doc: dict) -> dict:
    return doc.get("Invoice") or doc.get("CreditNote") or {}


def _target_id(doc: dict) -> str:
    target = _target(doc)
    return target.get("InvoiceID") or target.get("CreditNoteID") or ""


def render_payment(doc: dict) -> dict:
    out = {k: v for k, v in doc.items() if k not in ("Date", "UpdatedDateUTC")}
    d = date.fromisoformat(doc["Date"])
    out["Date"] = ms_json(d)
    out["UpdatedDateUTC"] = ms_json(int(doc["UpdatedDateUTC"]))
    return out


def _amount_and_date(el: dict, what: str, errors: list[str]) -> tuple[Any, str | None]:
    """A payment's or allocation's `Amount` (required, above zero) and `Date` (ISO text or None),
    Xero's validation messages appended to `errors`."""
    from finance_pipeline.platforms.xero.emulator_store import _number  # emulator_store imports this module

    amount = _number(el.get("Amount"), "Amount", errors)
    if amount is None:
        errors.append("Amount must be specified")
    elif amount <= 0:
        errors.append(f"{what} amount must be greater than zero")
    try:
        on = parse_date(el["Date"]).isoformat() if el.get("Date") else None
    except ValueError:
        on = None
        errors.append(f"Date '{el.get('Date')}' is not a valid date")
    return amount, on


class PaymentsMixin:
    """Needs from XeroStore: tenant_id, now(), read(), _bump, _invoice_doc, _store_invoice, _compute_totals."""

    def _ensure_payment_schema(self, con: sqlite3.Connection) -> None:
        con.executescript(PAYMENT_SCHEMA)

    def _payment_doc(self, con: sqlite3.Connection, payment_id: str) -> dict | None:
        row = con.execute("SELECT doc FROM payments WHERE tenant_id = ? AND payment_id = ?",
                          (self.tenant_id, payment_id)).fetchone()  # type: ignore[attr-defined]
        return loads(row[0]) if row else None

    def _store_payment(self, con: sqlite3.Connection, doc: dict) -> None:
        con.execute(
            "INSERT INTO payments (payment_id, tenant_id, invoice_id, invoice_number, reference, status, date, "
            "updated_ms, doc, json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(payment_id) DO UPDATE SET "
            "status = excluded.status, updated_ms = excluded.updated_ms, doc = excluded.doc, json = excluded.json",
            (doc["PaymentID"], self.tenant_id, _target_id(doc),  # type: ignore[attr-defined]
             _target(doc).get("InvoiceNumber") or _target(doc).get("CreditNoteNumber"), doc.get("Reference"),
             doc["Status"], doc["Date"],
             doc["UpdatedDateUTC"], dumps(doc).decode(), dumps(render_payment(doc))))

    def save_payments(self, con: sqlite3.Connection, elements: list[Any], *, create_only: bool,
                      forced_id: str | None = None) -> list:
        from finance_pipeline.platforms.xero.emulator_store import ElementResult, _compute_totals, _validation_echo

        results = []
        now_ms = int(self.now() * 1000)  # type: ignore[attr-defined]
        for element in elements:
            if not isinstance(element, dict):
                results.append(ElementResult(False, _validation_echo(element, ["A payment must be an object"])))
                continue
            if forced_id or element.get("PaymentID"):
                pid = forced_id or str(element["PaymentID"])
                existing = self._payment_doc(con, pid)
                if existing is None:
                    results.append(ElementResult(False, _validation_echo(
                        element, [f"Payment with PaymentID '{pid}' could not be found"], "PaymentID")))
                    continue
                if element.get("Status") != "DELETED" or create_only:
                    results.append(ElementResult(False, _validation_echo(
                        element, ["Payments cannot be edited; delete the payment and enter it again"],
                        "PaymentID")))
                    continue
                if existing["Status"] == "DELETED":
                    results.append(ElementResult(True, {**render_payment(existing), "StatusAttributeString": "OK"}))
                    continue
                invoice = self._invoice_doc(con, "invoice_id", _target_id(existing))  # type: ignore
                invoice["AmountPaid"] = money(invoice["AmountPaid"] - existing["Amount"])
                invoice["Payments"] = [p for p in invoice.get("Payments", []) if p["PaymentID"] != pid]
                if invoice["Status"] == "PAID":
                    invoice["Status"] = "AUTHORISED"
                    invoice.pop("FullyPaidOnDate", None)
                _compute_totals(invoice)
                invoice["UpdatedDateUTC"] = now_ms
                self._store_invoice(con, invoice)  # type: ignore[attr-defined]
                doc = copy.deepcopy(existing)
                doc["Status"], doc["UpdatedDateUTC"] = "DELETED", now_ms
                self._store_payment(con, doc)
                self._bump(con, "payments_deleted")  # type: ignore[attr-defined]
                results.append(ElementResult(True, {**render_payment(doc), "StatusAttributeString": "OK"}))
                continue
            doc, errors = self._build_payment(con, element, now_ms)
            if errors:
                results.append(ElementResult(False, _validation_echo(element, errors, "PaymentID")))
                continue
            self._store_payment(con, doc)
            self._bump(con, "payments_created")  # type: ignore[attr-defined]
            results.append(ElementResult(True, {**render_payment(doc), "StatusAttributeString": "OK"}))
        return results

    def _build_payment(self, con: sqlite3.Connection, el: dict, now_ms: int) -> tuple[dict, list[str]]:
        from finance_pipeline.platforms.xero.emulator_store import _compute_totals

        errors: list[str] = []
        target = el.get("Invoice") if isinstance(el.get("Invoice"), dict) else None
        credit = el.get("CreditNote") if isinstance(el.get("CreditNote"), dict) else None
        invoice = None
        if target is None and credit is None:
            errors.append("An Invoice or CreditNote must be specified")
        elif credit is not None:  # a refund paid out against a credit note
            ref_ = credit.get("CreditNoteID") or credit.get("CreditNoteNumber")
            column = "invoice_id" if credit.get("CreditNoteID") else "invoice_number"
            invoice = self._invoice_doc(con, column, str(ref_)) if ref_ else None  # type: ignore[attr-defined]
            if invoice is not None and "CREDIT" not in invoice["Type"]:
                invoice = None
            if invoice is None:
                errors.append("Credit note could not be found")
        elif target.get("InvoiceID"):
            invoice = self._invoice_doc(con, "invoice_id", str(target["InvoiceID"]))  # type: ignore[attr-defined]
        elif target.get("InvoiceNumber"):
            invoice = self._invoice_doc(con, "invoice_number", str(target["InvoiceNumber"]))  # type: ignore
        if target is not None and credit is None and (invoice is None or "CREDIT" in invoice["Type"]):
            invoice = None
            errors.append("Invoice could not be found")
        account_el = el.get("Account") if isinstance(el.get("Account"), dict) else {}
        account = ref.ACCOUNTS.get(str(account_el.get("Code") or "")) or next(
            (a for a in ref.ACCOUNTS.values() if a.account_id == account_el.get("AccountID")), None)
        if account is None:
            errors.append("Account code must be specified and must exist")
        elif not (account.type == "BANK" or account.enable_payments):
            errors.append(f"Account code '{account.code}' is not a bank account and does not allow payments")
        amount, paid_on = _amount_and_date(el, "Payment", errors)
        if paid_on is None and not any("Date" in e for e in errors):
            errors.append("Date must be specified")
        if invoice is not None:
            if invoice["Status"] != "AUTHORISED":
                errors.append(f"Payment cannot be created as the invoice is {invoice['Status']}; "
                              "only AUTHORISED invoices can be paid")
            elif amount is not None and money(amount) > invoice["AmountDue"]:
                errors.append(f"The payment amount {money(amount)} exceeds the amount outstanding on this document "
                              f"({invoice['AmountDue']})")
        if errors or invoice is None or account is None or amount is None or paid_on is None:
            return {}, errors
        payment_id = str(uuid.uuid4())
        doc = {"PaymentID": payment_id, "Date": paid_on, "Amount": money(amount),
               "BankAmount": money(amount), "CurrencyRate": invoice.get("CurrencyRate", Decimal("1.000000")),
               "Reference": str(el.get("Reference") or ""), "Status": "AUTHORISED",
               "PaymentType": "ARCREDITPAYMENT" if "CREDIT" in invoice["Type"] else "ACCRECPAYMENT",
               "IsReconciled": False, "HasAccount": True, "HasValidationErrors": False,
               "Account": {"AccountID": account.account_id, "Code": account.code},
               "UpdatedDateUTC": now_ms}
        if "CREDIT" in invoice["Type"]:
            doc["CreditNote"] = {"CreditNoteID": invoice["InvoiceID"], "CreditNoteNumber": invoice.get("InvoiceNumber"),
                                 "Type": invoice["Type"], "CurrencyCode": invoice["CurrencyCode"],
                                 "Contact": invoice.get("Contact", {})}
        else:
            doc["Invoice"] = {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice.get("InvoiceNumber"),
                              "Type": invoice["Type"], "CurrencyCode": invoice["CurrencyCode"],
                              "Contact": invoice.get("Contact", {})}
        invoice["AmountPaid"] = money(invoice["AmountPaid"] + doc["Amount"])
        invoice.setdefault("Payments", []).append({"PaymentID": payment_id, "Date": paid_on, "Amount": doc["Amount"],
                                                   "Reference": doc["Reference"]})
        _compute_totals(invoice)
        if invoice["AmountDue"] <= 0:
            invoice["Status"] = "PAID"
            invoice["FullyPaidOnDate"] = paid_on
        invoice["UpdatedDateUTC"] = now_ms
        self._store_invoice(con, invoice)  # type: ignore[attr-defined]
        return doc, []

    def list_payments(self, *, where: str | None, modified_since_ms: int | None, order: str | None,
                      page: int | None, page_size: int) -> tuple[list[bytes], int]:
        from finance_pipeline.platforms.xero.emulator_store import _order_sql

        sql, params = compile_where(where, PAYMENT_FIELDS)
        clauses, args = ["tenant_id = ?", sql], [self.tenant_id, *params]  # type: ignore[attr-defined]
        if modified_since_ms is not None:
            clauses.append("updated_ms >= ?")
            args.append(modified_since_ms)
        return self._page("payments", "json", clauses, args, _order_sql(order, PAYMENT_ORDER),  # type: ignore
                          page, page_size)

    def get_payment(self, payment_id: str) -> bytes | None:
        row = self.read().execute("SELECT json FROM payments WHERE tenant_id = ? AND payment_id = ?",  # type: ignore
                                  (self.tenant_id, payment_id)).fetchone()  # type: ignore[attr-defined]
        return row[0] if row else None

    def payment_docs(self) -> list[dict]:
        rows = self.read().execute("SELECT doc FROM payments WHERE tenant_id = ? ORDER BY seq",  # type: ignore
                                   (self.tenant_id,)).fetchall()  # type: ignore[attr-defined]
        return [loads(r[0]) for r in rows]


def render_credit_note(doc: dict) -> dict:
    """A credit note (stored like an invoice) in the wire shape of `/CreditNotes`."""
    from finance_pipeline.platforms.xero.emulator_store import render_invoice

    out = render_invoice(doc, unitdp=2)
    out["CreditNoteID"] = out.pop("InvoiceID")
    out["CreditNoteNumber"] = out.pop("InvoiceNumber")
    out["RemainingCredit"] = out.pop("AmountDue")
    for key in ("DueDate", "DueDateString", "AmountCredited"):
        out.pop(key, None)
    out["Allocations"] = [{**a, "Date": ms_json(date.fromisoformat(a["Date"]))} for a in doc.get("Allocations", [])]
    return out


ALLOCATION_EDIT_REFUSED = "This document cannot be edited as it has a payment or credit note allocated to it."


class CreditNotesMixin:
    """`/CreditNotes`: credit notes share the invoices table (Type ACCRECCREDIT / ACCPAYCREDIT) and its
    rules (lines, totals, tax types, numbers unique per type); they have no due date."""

    def save_credit_notes(self, con: sqlite3.Connection, elements: list[Any], *, create_only: bool, unitdp: int = 2,
                          forced_id: str | None = None) -> list:
        from finance_pipeline.platforms.xero.emulator_store import ElementResult, _validation_echo

        results = []
        for element in elements:
            if not isinstance(element, dict):
                results.append(ElementResult(False, _validation_echo(element, ["A credit note must be an object"])))
                continue
            mapped = {k: v for k, v in element.items() if k not in ("CreditNoteID", "CreditNoteNumber")}
            if element.get("CreditNoteID"):
                mapped["InvoiceID"] = element["CreditNoteID"]
            if element.get("CreditNoteNumber"):
                mapped["InvoiceNumber"] = element["CreditNoteNumber"]
            mapped.setdefault("Type", "ACCRECCREDIT")
            if mapped["Type"] not in ("ACCRECCREDIT", "ACCPAYCREDIT"):
                results.append(ElementResult(False, _validation_echo(
                    element, [f"Credit note Type '{mapped['Type']}' is not supported"], "CreditNoteID")))
                continue
            existing_id = str(forced_id or mapped.get("InvoiceID") or "")
            existing = self._invoice_doc(con, "invoice_id", existing_id)  # type: ignore[attr-defined]
            if existing is not None and mapped.get("Status") not in ("VOIDED", "DELETED") and (
                    existing.get("AmountCredited") or existing.get("AmountPaid")):
                # Xero: an allocated (or refunded) credit note cannot be edited; remove the allocation first
                results.append(ElementResult(False, _validation_echo(element, [ALLOCATION_EDIT_REFUSED],
                                                                     "CreditNoteID")))
                continue
            (result,) = self.save_invoices(con, [mapped], create_only=create_only, unitdp=unitdp,  # type: ignore
                                           forced_id=forced_id)
            wire = dict(result.wire)
            if result.ok:
                wire = {**render_credit_note(self._invoice_doc(con, "invoice_id", wire["InvoiceID"])),  # type: ignore
                        "StatusAttributeString": "OK"}
            else:
                if "InvoiceID" in wire:
                    wire["CreditNoteID"] = wire.pop("InvoiceID")
                if "InvoiceNumber" in wire:
                    wire["CreditNoteNumber"] = wire.pop("InvoiceNumber")
            results.append(ElementResult(result.ok, wire))
        return results

    def save_allocations(self, con: sqlite3.Connection, elements: list[Any], *, create_only: bool,
                         forced_id: str | None = None) -> list:
        """`PUT /CreditNotes/{id}/Allocations`: part of a credit note's remaining credit applied to an
        AUTHORISED sales invoice of the same contact and currency, never above the credit that remains
        nor above what the invoice still owes; the invoice is PAID (and the credit note too) at zero."""
        from finance_pipeline.platforms.xero.emulator_store import (
            ElementResult, _compute_totals, _now_ms, _validation_echo)

        results = []
        now_ms = _now_ms(self.now())  # type: ignore[attr-defined]
        for element in elements:
            errors: list[str] = []
            note = self._invoice_doc(con, "invoice_id", str(forced_id or ""))  # type: ignore[attr-defined]
            if not isinstance(element, dict):
                results.append(ElementResult(False, _validation_echo(element, ["An allocation must be an object"])))
                continue
            target = element.get("Invoice") if isinstance(element.get("Invoice"), dict) else {}
            invoice = None
            if target.get("InvoiceID"):
                invoice = self._invoice_doc(con, "invoice_id", str(target["InvoiceID"]))  # type: ignore
            elif target.get("InvoiceNumber"):
                invoice = self._invoice_doc(con, "invoice_number", str(target["InvoiceNumber"]))  # type: ignore
            if note is None or "CREDIT" not in note["Type"]:
                errors.append("Credit note could not be found")
            if invoice is None or "CREDIT" in invoice["Type"]:
                invoice = None
                errors.append("Invoice could not be found")
            amount, on = _amount_and_date(element, "Allocation", errors)
            if note is not None and invoice is not None and amount is not None and amount > 0:
                if note["Status"] != "AUTHORISED":
                    errors.append(f"Credit note is {note['Status']}: only an AUTHORISED credit note can be allocated")
                if invoice["Status"] != "AUTHORISED":
                    errors.append(f"Invoice is {invoice['Status']}: only an AUTHORISED invoice can take an allocation")
                if {"ACCRECCREDIT": "ACCREC", "ACCPAYCREDIT": "ACCPAY"}.get(note["Type"]) != invoice["Type"]:
                    errors.append("The credit note and the invoice must be of matching types")
                if note.get("CurrencyCode") != invoice.get("CurrencyCode"):
                    errors.append("The credit note and the invoice must be in the same currency")
                if (note.get("Contact") or {}).get("ContactID") != (invoice.get("Contact") or {}).get("ContactID"):
                    errors.append("The credit note and the invoice must be for the same contact")
                if money(amount) > note["AmountDue"]:
                    errors.append(f"The amount {money(amount)} exceeds the remaining credit on the credit note "
                                  f"({note['AmountDue']})")
                if money(amount) > invoice["AmountDue"]:
                    errors.append(f"The amount {money(amount)} exceeds the amount due on the invoice "
                                  f"({invoice['AmountDue']})")
            if errors or note is None or invoice is None or amount is None:
                results.append(ElementResult(False, _validation_echo(element, errors, "AllocationID")))
                continue
            on = on or note["Date"]
            allocation_id = str(uuid.uuid4())
            amt = money(amount)
            note.setdefault("Allocations", []).append({
                "AllocationID": allocation_id, "Amount": amt, "Date": on,
                "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice.get("InvoiceNumber")}})
            invoice.setdefault("CreditNotes", []).append({
                "AllocationID": allocation_id, "CreditNoteID": note["InvoiceID"],
                "CreditNoteNumber": note.get("InvoiceNumber"), "AppliedAmount": amt, "Date": on})
            for doc in (note, invoice):
                doc["AmountCredited"] = money(doc.get("AmountCredited", Decimal(0)) + amt)
                _compute_totals(doc)
                if doc["AmountDue"] <= 0:
                    doc["Status"] = "PAID"
                    doc["FullyPaidOnDate"] = on
                doc["UpdatedDateUTC"] = now_ms
                self._store_invoice(con, doc)  # type: ignore[attr-defined]
            self._bump(con, "allocations_created")  # type: ignore[attr-defined]
            results.append(ElementResult(True, {
                "AllocationID": allocation_id, "Amount": amt, "Date": ms_json(date.fromisoformat(on)),
                "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice.get("InvoiceNumber")},
                "CreditNote": {"CreditNoteID": note["InvoiceID"], "CreditNoteNumber": note.get("InvoiceNumber")},
                "StatusAttributeString": "OK"}))
        return results

    def delete_allocation(self, credit_note_id: str, allocation_id: str) -> bool:
        """`DELETE /CreditNotes/{id}/Allocations/{AllocationID}`: the credit returns to the note and
        the invoice owes it again.  False when there is no such allocation."""
        from finance_pipeline.platforms.xero.emulator_store import _compute_totals, _now_ms

        with self.write() as con:  # type: ignore[attr-defined]
            note = self._invoice_doc(con, "invoice_id", credit_note_id)  # type: ignore[attr-defined]
            found = next((a for a in (note or {}).get("Allocations", []) if a["AllocationID"] == allocation_id), None)
            if note is None or found is None:
                return False
            invoice = self._invoice_doc(con, "invoice_id", found["Invoice"]["InvoiceID"])  # type: ignore
            now_ms = _now_ms(self.now())  # type: ignore[attr-defined]
            note["Allocations"] = [a for a in note["Allocations"] if a["AllocationID"] != allocation_id]
            invoice["CreditNotes"] = [c for c in invoice.get("CreditNotes", []) if c["AllocationID"] != allocation_id]
            for doc in (note, invoice):
                doc["AmountCredited"] = money(doc["AmountCredited"] - found["Amount"])
                if doc["Status"] == "PAID":
                    doc["Status"] = "AUTHORISED"
                    doc.pop("FullyPaidOnDate", None)
                _compute_totals(doc)
                doc["UpdatedDateUTC"] = now_ms
                self._store_invoice(con, doc)  # type: ignore[attr-defined]
            self._bump(con, "allocations_deleted")  # type: ignore[attr-defined]
        return True

    def list_credit_notes(self, *, where: str | None, page: int | None, page_size: int) -> tuple[list[bytes], int]:
        fields = {"CreditNoteNumber": Field("invoice_number"), "Status": Field("status"), "Type": Field("type"),
                  "Reference": Field("reference"), "CreditNoteID": Field("invoice_id"),
                  "UpdatedDateUTC": Field("updated_ms", "ms")}
        sql, params = compile_where(where, fields)
        con = self.read()  # type: ignore[attr-defined]
        rows = con.execute(f"SELECT doc FROM invoices WHERE tenant_id = ? AND type LIKE '%CREDIT' AND {sql} "
                           "ORDER BY seq", [self.tenant_id, *params]).fetchall()  # type: ignore[attr-defined]
        docs = [dumps(render_credit_note(loads(r[0]))) for r in rows]
        if page is None:
            return docs, len(docs)
        return docs[(page - 1) * page_size:page * page_size], len(docs)

    def get_credit_note(self, ref_: str) -> dict | None:
        con = self.read()  # type: ignore[attr-defined]
        for column in ("invoice_id", "invoice_number"):
            row = con.execute(f"SELECT doc FROM invoices WHERE tenant_id = ? AND {column} = ? AND type LIKE '%CREDIT'",
                              (self.tenant_id, ref_)).fetchone()  # type: ignore[attr-defined]
            if row:
                return loads(row[0])
        return None


_ = date_string  # (kept for symmetry with invoices' *String fields)
