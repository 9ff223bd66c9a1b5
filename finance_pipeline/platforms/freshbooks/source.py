"""The FreshBooks dlt source: invoices (with lines), payments and clients.

Each resource yields one Arrow table per page.  Money objects `{"amount", "code"}` are flattened to
their decimal string (the currency is the invoice's `currency_code`); FreshBooks' naive US/Eastern
timestamps (`created_at`, `updated`) are converted to UTC here (`created_at`, `updated_at`), the
original `updated` text kept; invoice lines stay a JSON column that dbt unnests.

Incremental strategy (all three resources): `search[updated_min]` = the last run's largest
`updated_at` less a 2 h lookback, written as Eastern local time (the filter is read in the same
zone as the field), `sort=updated_asc`, pages walked up to the envelope's `pages`.  FreshBooks
hides deleted and archived documents unless asked, so every run walks `vis_state` 0, 1 and 2:
an invoice deleted after issue (a void) arrives with its new `updated`.  Recording a payment
moves its invoice's `updated`.  Bad records are quarantined with the reason; the run goes on.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.ingest.arrow import JSON, TS, rows_to_arrow
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, check_decimal, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.freshbooks.client import (
    accounting_path, list_pages, make_client, to_eastern, to_utc,
)

LOOKBACK_S = 2 * 3600
VIS_STATES = (0, 1, 2)

INVOICE_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "invoice_number": pa.string(), "customerid": pa.int64(), "organization": pa.string(),
    "fname": pa.string(), "lname": pa.string(), "country": pa.string(), "vat_number": pa.string(),
    "currency_code": pa.string(), "create_date": pa.string(), "due_date": pa.string(),
    "due_offset_days": pa.int64(), "created_at": TS, "updated": pa.string(), "updated_at": TS,
    "vis_state": pa.int64(), "v3_status": pa.string(), "payment_status": pa.string(), "amount": pa.string(),
    "outstanding": pa.string(), "paid": pa.string(), "po_number": pa.string(), "notes": pa.string(),
    "lines": JSON,
}
PAYMENT_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "invoiceid": pa.int64(), "clientid": pa.int64(), "amount": pa.string(),
    "currency_code": pa.string(), "date": pa.string(), "type": pa.string(), "note": pa.string(),
    "updated": pa.string(), "updated_at": TS, "vis_state": pa.int64(),
}
CLIENT_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "organization": pa.string(), "fname": pa.string(), "lname": pa.string(),
    "email": pa.string(), "p_country": pa.string(), "currency_code": pa.string(), "vat_number": pa.string(),
    "note": pa.string(), "updated": pa.string(), "updated_at": TS, "vis_state": pa.int64(),
}


def _money(record: dict, *names: str) -> None:
    """Flatten `{"amount": "…", "code": "…"}` objects to their decimal string (checked)."""
    for name in names:
        value = record.get(name)
        if isinstance(value, dict):
            record[name] = value.get("amount")
            record.setdefault("currency_code", value.get("code"))
    check_decimal(record, *names)


def _times(record: dict) -> None:
    try:
        record["updated_at"] = to_utc(record.get("updated"))
        if "created_at" in record:
            record["created_at"] = to_utc(record.get("created_at"))
    except (TypeError, ValueError):
        raise BadRecord(f"updated={record.get('updated')!r} is not a FreshBooks timestamp") from None


def _int(record: dict, *names: str) -> None:
    for name in names:
        if not isinstance(record.get(name), int) or isinstance(record.get(name), bool):
            raise BadRecord(f"{name}={record.get(name)!r} is not an integer id")


def validate_invoice(inv: dict) -> None:
    require(inv, "id", "invoice_number", "currency_code", "updated", "create_date", "amount")
    _int(inv, "id", "customerid")
    check_currency(inv["currency_code"])
    _money(inv, "amount", "outstanding", "paid")
    _times(inv)
    for line in inv.get("lines") or ():
        require(line, "qty", "unit_cost")
        check_decimal(line, "qty", "taxAmount1", "taxAmount2")
        check_decimal(line.get("unit_cost") or {}, "amount")
        check_decimal(line.get("amount") or {}, "amount")


def validate_payment(p: dict) -> None:
    require(p, "id", "invoiceid", "amount", "date", "updated")
    _int(p, "id", "invoiceid")
    _money(p, "amount")
    _times(p)


def validate_client(c: dict) -> None:
    require(c, "id", "updated")
    _int(c, "id")
    _times(c)


def freshbooks_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("freshbooks")
    shared = SharedClient("freshbooks", connection, make_client)

    def walk(group: str, resource: str, key: str, cursor: Any, check, schema: dict, extra: dict | None = None
             ) -> Iterator[pa.Table]:  # noqa: ANN001
        params: dict[str, Any] = {"sort": "updated_asc", **(extra or {})}
        if cursor.start_value is not None:
            params["search[updated_min]"] = to_eastern(cursor.start_value)
        with shared as client:
            path = accounting_path(client_connection(), group, resource)
            for vis in VIS_STATES:
                for items in list_pages(client, path, key, {**params, "search[vis_state]": vis}):
                    rows = quarantine.keep(key, items, check)
                    if rows:
                        table = rows_to_arrow(rows, schema)
                        i = table.schema.get_field_index("id")  # the merge key is never null
                        yield table.cast(table.schema.set(i, table.schema.field(i).with_nullable(False)))

    def client_connection() -> Connection:
        if connection is None:
            raise RuntimeError("freshbooks_source needs a connection at run time")
        return connection

    @dlt.resource(name="invoices", primary_key="id", write_disposition="merge")
    def invoices(updated: dlt.sources.incremental[datetime] = dlt.sources.incremental(
            "updated_at", lag=LOOKBACK_S)) -> Iterator[pa.Table]:
        yield from walk("invoices", "invoices", "invoices", updated, validate_invoice, INVOICE_SCHEMA,
                        {"include[]": "lines"})

    @dlt.resource(name="payments", primary_key="id", write_disposition="merge")
    def payments(updated: dlt.sources.incremental[datetime] = dlt.sources.incremental(
            "updated_at", lag=LOOKBACK_S)) -> Iterator[pa.Table]:
        yield from walk("payments", "payments", "payments", updated, validate_payment, PAYMENT_SCHEMA)

    @dlt.resource(name="clients", primary_key="id", write_disposition="merge")
    def clients(updated: dlt.sources.incremental[datetime] = dlt.sources.incremental(
            "updated_at", lag=LOOKBACK_S)) -> Iterator[pa.Table]:
        yield from walk("users", "clients", "clients", updated, validate_client, CLIENT_SCHEMA)

    @dlt.source(name="freshbooks", max_table_nesting=0)
    def freshbooks() -> Any:
        return invoices, payments, clients

    return freshbooks()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"invoices": INVOICE_SCHEMA, "payments": PAYMENT_SCHEMA, "clients": CLIENT_SCHEMA}
