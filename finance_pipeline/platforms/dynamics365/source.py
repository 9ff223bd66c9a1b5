"""The Business Central dlt source: posted sales invoices (with lines), customer payments, customers
and the company's GBP exchange rates.

Each resource yields one Arrow table per page.  Columns are BC's field names in snake_case
(`lastModifiedDateTime` → `last_modified_date_time`), money the exact decimal text of BC's JSON
numbers (parsed as `Decimal`), dates as text (cast in staging), timestamps typed, invoice lines
as one JSON column.  Bad records are quarantined with the reason; the rest load.

Incremental strategy (every resource): `$filter=lastModifiedDateTime gt <last run's largest
value minus 1 h>`, `$orderby=lastModifiedDateTime asc`, server-driven pages of
`Prefer: odata.maxpagesize=N` (1 000 live, 25 in the sandbox so the paging is exercised),
`@odata.nextLink` followed verbatim until absent; merge on `id` absorbs the overlap.  An edit or
cancellation of a posted invoice moves its `lastModifiedDateTime`.  Deleted journal lines leave no
tombstone in API v2.0; a payment line is never deleted here (posted journals are kept, see
docs/decisions.md).
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterator

import dlt
import orjson
import pyarrow as pa

from finance_pipeline.http.client import ApiClient, json_default
from finance_pipeline.http.pagination import next_url_pages
from finance_pipeline.ingest.arrow import JSON, TS, parse_timestamp, rows_to_arrow
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, check_decimal, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.dynamics365.client import make_client

LIVE_PAGE_SIZE, SANDBOX_PAGE_SIZE = 1_000, 25
LOOKBACK_S = 3600
CURSOR = "last_modified_date_time"

INVOICE_MONEY = ("remaining_amount", "discount_amount", "total_amount_excluding_tax", "total_tax_amount",
                 "total_amount_including_tax")
INVOICE_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "number": pa.string(), "external_document_number": pa.string(), "invoice_date": pa.string(),
    "posting_date": pa.string(), "due_date": pa.string(), "customer_purchase_order_reference": pa.string(),
    "customer_id": pa.string(), "customer_number": pa.string(), "customer_name": pa.string(), "email": pa.string(),
    "sell_to_country": pa.string(), "sell_to_state": pa.string(), "currency_code": pa.string(),
    "payment_terms_id": pa.string(), "prices_include_tax": pa.bool_(), "status": pa.string(),
    **{name: pa.string() for name in INVOICE_MONEY}, CURSOR: TS, "sales_invoice_lines": JSON,
}
PAYMENT_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "journal_id": pa.string(), "journal_display_name": pa.string(), "line_number": pa.int64(),
    "customer_id": pa.string(), "customer_number": pa.string(), "posting_date": pa.string(),
    "document_number": pa.string(), "external_document_number": pa.string(), "amount": pa.string(),
    "applies_to_invoice_id": pa.string(), "applies_to_invoice_number": pa.string(), "description": pa.string(),
    CURSOR: TS,
}
CUSTOMER_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "number": pa.string(), "display_name": pa.string(), "type": pa.string(),
    "email": pa.string(), "country": pa.string(), "state": pa.string(), "currency_code": pa.string(),
    "tax_liable": pa.bool_(), "tax_area_display_name": pa.string(), "tax_registration_number": pa.string(),
    "blocked": pa.string(), CURSOR: TS,
}
RATE_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "currency_code": pa.string(), "starting_date": pa.string(),
    "exchange_rate_amount": pa.string(), "relational_currency_code": pa.string(),
    "relational_exchange_rate_amount": pa.string(), CURSOR: TS,
}
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(name: str) -> str:
    return _CAMEL.sub(r"_\1", name).lower()


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, default=json_default).decode()
    return value


def _row(record: dict, schema: dict[str, pa.DataType]) -> dict:
    out = {}
    for key, value in record.items():
        name = snake(key)
        if name in schema:
            out[name] = _text(value)
    return out


def _check_money(record: dict, *names: str) -> None:
    for name in names:
        value = record.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, Decimal))):
            raise BadRecord(f"{name}={value!r} is not a number")
    check_decimal(record, *names)


def _check_time(record: dict) -> None:
    try:
        parse_timestamp(record.get("lastModifiedDateTime"))
    except (TypeError, ValueError):
        raise BadRecord(f"lastModifiedDateTime={record.get('lastModifiedDateTime')!r} is not a date-time") from None


def validate_invoice(inv: dict) -> None:
    require(inv, "id", "number", "invoiceDate", "customerNumber", "currencyCode", "lastModifiedDateTime")
    check_currency(inv["currencyCode"], "currencyCode")
    _check_money(inv, "remainingAmount", "totalAmountExcludingTax", "totalTaxAmount", "totalAmountIncludingTax")
    _check_time(inv)
    for line in inv.get("salesInvoiceLines") or ():
        require(line, "id", "lineType", "quantity")
        _check_money(line, "unitPrice", "quantity", "discountAmount", "amountExcludingTax", "totalTaxAmount",
                     "taxPercent")


def validate_payment(p: dict) -> None:
    require(p, "id", "postingDate", "amount", "lastModifiedDateTime")
    _check_money(p, "amount")
    _check_time(p)


def validate_customer(c: dict) -> None:
    require(c, "id", "number", "lastModifiedDateTime")
    _check_time(c)


def validate_rate(r: dict) -> None:
    require(r, "id", "currencyCode", "startingDate", "exchangeRateAmount", "relationalExchangeRateAmount")
    _check_money(r, "exchangeRateAmount", "relationalExchangeRateAmount")
    if not r["exchangeRateAmount"] or not r["relationalExchangeRateAmount"]:
        raise BadRecord("an exchange rate amount is zero")


def _table(rows: list[dict], schema: dict[str, pa.DataType]) -> pa.Table:
    table = rows_to_arrow(rows, schema)
    index = table.schema.get_field_index("id")
    return table.cast(table.schema.set(index, table.schema.field(index).with_nullable(False)))


def page_size(client_settings_mode: str) -> int:
    return SANDBOX_PAGE_SIZE if client_settings_mode == "sandbox" else LIVE_PAGE_SIZE


def odata_pages(client: ApiClient, path: str, since: datetime | None, *, size: int,
                params: dict[str, str] | None = None) -> Iterator[list]:
    """Pages of `value` from `path`, modified after `since` (none: everything), oldest first."""
    query = dict(params or {})
    query["$orderby"] = "lastModifiedDateTime asc"
    if since is not None:
        at = parse_timestamp(since).astimezone(timezone.utc)
        query["$filter"] = f"lastModifiedDateTime gt {at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    for body in next_url_pages(client, path, query, next_of=lambda b: b.get("@odata.nextLink"),
                               headers={"Prefer": f"odata.maxpagesize={size}"}):
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise BadRecord(f"{path}: the answer has no value list")
        yield body["value"]


def dynamics365_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("dynamics365")
    shared = SharedClient("dynamics365", connection, make_client)
    size = page_size(connection.settings.mode) if connection is not None else LIVE_PAGE_SIZE

    def resource(name: str, path: str, check: Callable[[dict], None], schema: dict[str, pa.DataType],
                 params: dict[str, str] | None = None) -> Any:
        @dlt.resource(name=name, primary_key="id", write_disposition="merge")
        def rows(updated: dlt.sources.incremental[datetime] = dlt.sources.incremental(CURSOR, lag=LOOKBACK_S),
                 ) -> Iterator[pa.Table]:
            with shared as client:
                for page in odata_pages(client, path, updated.start_value, size=size, params=params):
                    good = quarantine.keep(name, page, check)
                    if good:
                        yield _table([_row(r, schema) for r in good], schema)
        return rows

    @dlt.source(name="dynamics365", max_table_nesting=0)
    def dynamics365() -> Any:
        return (
            resource("sales_invoices", "salesInvoices", validate_invoice, INVOICE_SCHEMA,
                     {"$expand": "salesInvoiceLines"}),
            resource("customer_payments", "customerPayments", validate_payment, PAYMENT_SCHEMA),
            resource("customers", "customers", validate_customer, CUSTOMER_SCHEMA),
            resource("currency_exchange_rates", "currencyExchangeRates", validate_rate, RATE_SCHEMA),
        )

    return dynamics365()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"sales_invoices": INVOICE_SCHEMA, "customer_payments": PAYMENT_SCHEMA, "customers": CUSTOMER_SCHEMA,
              "currency_exchange_rates": RATE_SCHEMA}
