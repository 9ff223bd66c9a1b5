"""The Zoho Books dlt source: the EU trade desk's invoices, customer payments and customers.

Each resource yields one Arrow table per page; money is the exact decimal text of Zoho's JSON
numbers (parsed as `Decimal`), `created_time` / `last_modified_time` (org time zone with offset)
become UTC timestamps, `line_items` / `invoices` / `billing_address` stay JSON text for dbt.

- `invoices`: `GET /invoices?last_modified_time=<cursor − 2 h>&sort_column=last_modified_time
  &filter_by=Status.All`, 200 a page, then `GET /invoices/{id}` for each row (list rows carry no
  line items).  Creating, editing, voiding and recording a payment all move `last_modified_time`.
- `customer_payments`: the list has no modified-time filter, so a trailing window of payment dates
  (`date_start` = the latest payment date seen − 45 days) is re-read; a payment applied to several
  invoices is read one by one for its `invoices` (the list names them in `invoice_numbers` only).
  Deleted payments leave no tombstone (a full re-read, `dlt` state reset, removes them).
- `contacts`: every customer (a few dozen), merged on `contact_id`.

Bad records (no id, an unreadable amount or time, an unknown currency) are quarantined.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Callable, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.http.client import ApiClient
from finance_pipeline.ingest.arrow import JSON, TS, exact_text, rows_to_arrow
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, check_decimal, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.zoho_books import wire
from finance_pipeline.platforms.zoho_books.client import call, make_client, pages

LOOKBACK_S = 2 * 3600
PAGE_SIZE = wire.MAX_PER_PAGE
PAYMENT_WINDOW_DAYS = 45

INVOICE_MONEY = ("exchange_rate", "sub_total", "tax_total", "shipping_charge", "shipping_charge_tax", "total",
                 "balance", "payment_made")
INVOICE_SCHEMA: dict[str, pa.DataType] = {
    "invoice_id": pa.string(), "invoice_number": pa.string(), "customer_id": pa.string(),
    "customer_name": pa.string(), "email": pa.string(), "status": pa.string(), "date": pa.string(),
    "due_date": pa.string(), "payment_terms": pa.int64(), "currency_code": pa.string(),
    "reference_number": pa.string(), "vat_treatment": pa.string(), "tax_reg_no": pa.string(),
    "is_inclusive_tax": pa.bool_(), **{m: pa.string() for m in INVOICE_MONEY},
    "billing_address": JSON, "line_items": JSON, "created_time": TS, "last_modified_time": TS,
}
PAYMENT_SCHEMA: dict[str, pa.DataType] = {
    "payment_id": pa.string(), "payment_number": pa.string(), "customer_id": pa.string(), "date": pa.string(),
    "payment_mode": pa.string(), "amount": pa.string(), "unused_amount": pa.string(), "currency_code": pa.string(),
    "exchange_rate": pa.string(), "reference_number": pa.string(), "invoice_numbers": pa.string(),
    "invoices": JSON, "created_time": TS, "last_modified_time": TS,
}
CONTACT_SCHEMA: dict[str, pa.DataType] = {
    "contact_id": pa.string(), "contact_number": pa.string(), "contact_name": pa.string(),
    "company_name": pa.string(), "contact_type": pa.string(), "email": pa.string(), "currency_code": pa.string(),
    "vat_reg_no": pa.string(), "payment_terms": pa.int64(), "billing_address": JSON, "status": pa.string(),
    "created_time": TS, "last_modified_time": TS,
}


def _times(record: dict, *names: str) -> dict:
    out = dict(record)
    for name in names:
        try:
            out[name] = wire.parse_zoho_time(str(record.get(name)))
        except (TypeError, ValueError, IndexError):
            raise BadRecord(f"{name}={record.get(name)!r} is not a Zoho time") from None
    return out


def _money(record: dict, *names: str) -> None:
    for name in names:
        value = record.get(name)
        if value is not None and (isinstance(value, (bool, float)) or not isinstance(value, (int, Decimal))):
            raise BadRecord(f"{name}={value!r} is not a number")
    check_decimal(record, *names)


def check_invoice(inv: dict) -> None:
    require(inv, "invoice_id", "invoice_number", "customer_id", "date", "currency_code", "total",
            "last_modified_time", "line_items")
    check_currency(inv["currency_code"], "currency_code")
    _money(inv, *INVOICE_MONEY)
    for line in inv.get("line_items") or ():
        require(line, "line_item_id", "quantity", "rate")
        _money(line, "rate", "discount", "item_total", "line_tax", "tax_percentage")
    try:
        date.fromisoformat(str(inv["date"]))
        date.fromisoformat(str(inv.get("due_date") or inv["date"]))
    except ValueError:
        raise BadRecord(f"date={inv.get('date')!r} / due_date={inv.get('due_date')!r} is not a date") from None


def check_payment(p: dict) -> None:
    require(p, "payment_id", "customer_id", "date", "amount", "currency_code", "last_modified_time")
    check_currency(p["currency_code"], "currency_code")
    _money(p, "amount", "unused_amount", "exchange_rate")


def check_contact(c: dict) -> None:
    require(c, "contact_id", "contact_name")


def _rows(records: list[Any], entity: str, key: str, check: Callable[[dict], None], quarantine: Quarantine,
          times: tuple[str, ...]) -> list[dict]:
    good = []
    for record in records:
        try:
            if not isinstance(record, dict):
                raise BadRecord("not a JSON object")
            check(record)
            record = _times(record, *times)
        except BadRecord as exc:
            quarantine.add(entity, record, str(exc), record_id=record.get(key) if isinstance(record, dict) else None)
            continue
        good.append({k: v if isinstance(v, datetime) else exact_text(v) for k, v in record.items()})
    return good


def invoice_pages(client: ApiClient, modified_from: datetime | None) -> Iterator[list[dict]]:
    params: dict[str, Any] = {"sort_column": "last_modified_time", "sort_order": "A", "filter_by": "Status.All"}
    if modified_from is not None:
        params["last_modified_time"] = wire.zoho_time(modified_from)
    for rows in pages(client, "invoices", "invoices", params, per_page=PAGE_SIZE):
        details = []
        for row in rows:
            if not isinstance(row, dict) or not row.get("invoice_id"):
                details.append(row)  # quarantined by the caller
                continue
            details.append(call(client, "GET", f"invoices/{row['invoice_id']}").get("invoice"))
        yield details


def payment_pages(client: ApiClient, paid_from: date | None) -> Iterator[list[dict]]:
    params: dict[str, Any] = {"sort_column": "date", "sort_order": "A"}
    if paid_from is not None:
        params["date_start"] = paid_from.isoformat()
    for rows in pages(client, "customerpayments", "customerpayments", params, per_page=PAGE_SIZE):
        out = []
        for row in rows:
            if isinstance(row, dict) and row.get("payment_id") and "," in str(row.get("invoice_numbers") or ""):
                row = call(client, "GET", f"customerpayments/{row['payment_id']}").get("payment") or row
            out.append(row)
        yield out


def zoho_books_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("zoho_books")
    shared = SharedClient("zoho_books", connection, make_client)

    @dlt.resource(name="invoices", primary_key="invoice_id", write_disposition="merge")
    def invoices(
        modified: dlt.sources.incremental[datetime] = dlt.sources.incremental("last_modified_time", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        with shared as client:
            for page in invoice_pages(client, modified.start_value):
                rows = _rows(page, "invoices", "invoice_id", check_invoice, quarantine,
                             ("created_time", "last_modified_time"))
                if rows:
                    yield rows_to_arrow(rows, INVOICE_SCHEMA)

    @dlt.resource(name="customer_payments", primary_key="payment_id", write_disposition="merge")
    def customer_payments() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        start = None
        if state.get("latest_date"):
            start = date.fromisoformat(state["latest_date"]) - timedelta(days=PAYMENT_WINDOW_DAYS)
        latest = state.get("latest_date")
        with shared as client:
            for page in payment_pages(client, start):
                for row in page:
                    if isinstance(row, dict) and "invoices" not in row and row.get("invoice_numbers"):
                        applied = Decimal(str(row.get("amount") or 0)) - Decimal(str(row.get("unused_amount") or 0))
                        row["invoices"] = [{"invoice_number": row["invoice_numbers"], "amount_applied": applied}]
                rows = _rows(page, "customer_payments", "payment_id", check_payment, quarantine,
                             ("created_time", "last_modified_time"))
                if rows:
                    latest = max([latest or "", *(str(r["date"]) for r in rows)])
                    yield rows_to_arrow(rows, PAYMENT_SCHEMA)
        if latest:
            state["latest_date"] = latest

    @dlt.resource(name="contacts", primary_key="contact_id", write_disposition="merge")
    def contacts() -> Iterator[pa.Table]:
        with shared as client:
            for page in pages(client, "contacts", "contacts", {"sort_column": "created_time"}, per_page=PAGE_SIZE):
                rows = _rows(page, "contacts", "contact_id", check_contact, quarantine,
                             ("created_time", "last_modified_time"))
                if rows:
                    yield rows_to_arrow(rows, CONTACT_SCHEMA)

    @dlt.source(name="zoho_books", max_table_nesting=0)
    def zoho_books() -> Any:
        return invoices, customer_payments, contacts

    return zoho_books()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"invoices": INVOICE_SCHEMA, "customer_payments": PAYMENT_SCHEMA, "contacts": CONTACT_SCHEMA}
