"""The SAP Business One dlt source: A/R invoices (cancellation documents included) and incoming payments.

Each resource yields one Arrow table per page: header scalars as typed columns, money as the exact
decimal text of B1's JSON numbers (parsed as `Decimal`), `DocumentLines` / `AddressExtension` /
`PaymentInvoices` as JSON text that dbt unnests, and `updated_at` (UTC) derived from B1's server-local
`UpdateDate` + `UpdateTime` (Europe/London).  Bad records are quarantined, the rest loaded.

Incremental strategy:
- `invoices`: `$filter=UpdateDate gt D or (UpdateDate eq D and UpdateTime ge 'T')`, with D/T the
  server-local date and time of the last run's largest `updated_at` minus a 2 h lookback (a payment,
  an edit or a cancellation saves the invoice and moves both fields); merge on `DocEntry` absorbs the
  overlap.  `$orderby=DocEntry`, `Prefer: odata.maxpagesize=100`, the next link followed to the end.
- `incoming_payments`: receipts are never edited (a receipt is cancelled, not changed), so the cursor
  is `DocEntry gt N` (DocEntry is allocated in order).
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterator
from zoneinfo import ZoneInfo

import dlt
import orjson
import pyarrow as pa

from finance_pipeline.http.client import json_default
from finance_pipeline.ingest.arrow import JSON, TS, rows_to_arrow
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.sap_business_one.client import make_client, pages

SERVER_TZ = ZoneInfo("Europe/London")
LOOKBACK_S = 2 * 3600
INVOICE_FIELDS = ("DocEntry,DocNum,DocDate,DocDueDate,DocTime,CreationDate,UpdateDate,UpdateTime,CardCode,"
                  "CardName,NumAtCard,DocCurrency,DocRate,DocTotal,DocTotalFc,VatSum,VatSumFc,PaidToDate,"
                  "Comments,Cancelled,CancelStatus,DocumentStatus,AddressExtension,DocumentLines")
PAYMENT_FIELDS = ("DocEntry,DocNum,DocType,CardCode,DocDate,DocTime,CreationDate,DocCurrency,DocRate,TransferSum,"
                  "TransferReference,Cancelled,PaymentInvoices")
INVOICE_MONEY = ("DocRate", "DocTotal", "DocTotalFc", "VatSum", "VatSumFc", "PaidToDate")
LINE_MONEY = ("Quantity", "UnitPrice", "LineTotal", "RowTotalFC", "TaxTotal", "NetTaxAmountFC")
INVOICE_SCHEMA: dict[str, pa.DataType] = {
    "DocEntry": pa.int64(), "DocNum": pa.int64(), "DocDate": pa.string(), "DocDueDate": pa.string(),
    "DocTime": pa.string(), "CreationDate": pa.string(), "UpdateDate": pa.string(), "UpdateTime": pa.string(),
    "updated_at": TS, "CardCode": pa.string(), "CardName": pa.string(), "NumAtCard": pa.string(),
    "DocCurrency": pa.string(), **{m: pa.string() for m in INVOICE_MONEY}, "Comments": pa.string(),
    "Cancelled": pa.string(), "CancelStatus": pa.string(), "DocumentStatus": pa.string(),
    "AddressExtension": JSON, "DocumentLines": JSON,
}
PAYMENT_SCHEMA: dict[str, pa.DataType] = {
    "DocEntry": pa.int64(), "DocNum": pa.int64(), "DocType": pa.string(), "CardCode": pa.string(),
    "DocDate": pa.string(), "DocTime": pa.string(), "CreationDate": pa.string(), "DocCurrency": pa.string(),
    "DocRate": pa.string(), "TransferSum": pa.string(), "TransferReference": pa.string(), "Cancelled": pa.string(),
    "PaymentInvoices": JSON,
}


def server_time(day: Any, time_of_day: Any) -> datetime:
    """B1's server-local date (`2026-11-01` or `2026-11-01T00:00:00Z` in v1) and `HH:MM:SS` → UTC."""
    d = str(day)[:10]
    t = str(time_of_day or "00:00:00")[:8]
    if len(t) == 5:
        t += ":00"
    return datetime.fromisoformat(f"{d}T{t}").replace(tzinfo=SERVER_TZ).astimezone(timezone.utc)


def updated_filter(since: datetime) -> str:
    """v2 filter for documents saved at or after `since` (dates bare, times quoted)."""
    local = since.astimezone(SERVER_TZ)
    d, t = local.date().isoformat(), local.strftime("%H:%M:%S")
    return f"UpdateDate gt {d} or (UpdateDate eq {d} and UpdateTime ge '{t}')"


def _number(record: dict, name: str) -> None:
    value = record.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, Decimal))):
        raise BadRecord(f"{name}={value!r} is not a number")


def validate_invoice(doc: dict) -> None:
    require(doc, "DocEntry", "DocNum", "DocDate", "DocDueDate", "UpdateDate", "CardCode", "DocCurrency", "DocTotal")
    check_currency(doc["DocCurrency"], "DocCurrency")
    for name in INVOICE_MONEY:
        _number(doc, name)
    if doc.get("Cancelled") not in ("tYES", "tNO"):
        raise BadRecord(f"Cancelled={doc.get('Cancelled')!r} is not tYES/tNO")
    lines = doc.get("DocumentLines")
    if not isinstance(lines, list):
        raise BadRecord("DocumentLines is not a list")
    for line in lines:
        require(line, "LineNum", "Quantity", "LineTotal")
        for name in LINE_MONEY:
            _number(line, name)
    try:
        doc["updated_at"] = server_time(doc["UpdateDate"], doc.get("UpdateTime"))
    except ValueError:
        raise BadRecord(f"UpdateDate/UpdateTime {doc.get('UpdateDate')!r} {doc.get('UpdateTime')!r} "
                        "is not a date and time") from None


def validate_payment(doc: dict) -> None:
    require(doc, "DocEntry", "DocDate", "CardCode", "DocCurrency", "TransferSum")
    check_currency(doc["DocCurrency"], "DocCurrency")
    _number(doc, "TransferSum")
    _number(doc, "DocRate")
    applied = doc.get("PaymentInvoices")
    if not isinstance(applied, list) or not applied:
        raise BadRecord("PaymentInvoices is empty: a receipt on account is not applied to an invoice")
    for item in applied:
        require(item, "DocEntry", "SumApplied")
        _number(item, "SumApplied")
        _number(item, "AppliedFC")


def _cell(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, default=json_default).decode()
    return value


def _page_table(docs: list, entity: str, check: Callable[[dict], None], schema: dict[str, pa.DataType],
                quarantine: Quarantine) -> pa.Table | None:
    rows = []
    for doc in docs:
        try:
            if not isinstance(doc, dict):
                raise BadRecord("not a JSON object")
            check(doc)
        except BadRecord as exc:
            quarantine.add(entity, doc if isinstance(doc, dict) else {"value": doc}, str(exc),
                           record_id=doc.get("DocEntry") if isinstance(doc, dict) else None)
            continue
        rows.append({k: _cell(v) for k, v in doc.items()})
    return rows_to_arrow(rows, schema) if rows else None


def sap_business_one_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("sap_business_one")
    shared = SharedClient("sap_business_one", connection, make_client)

    @dlt.resource(name="invoices", primary_key="DocEntry", write_disposition="merge")
    def invoices(
        updated: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        params = {"$select": INVOICE_FIELDS, "$orderby": "DocEntry"}
        if updated.start_value is not None:
            params["$filter"] = updated_filter(updated.start_value)  # dlt applied the lag
        with shared as client:
            for docs in pages(client, "Invoices", params):
                table = _page_table(docs, "invoices", validate_invoice, INVOICE_SCHEMA, quarantine)
                if table is not None:
                    yield table

    @dlt.resource(name="incoming_payments", primary_key="DocEntry", write_disposition="merge")
    def incoming_payments(
        entry: dlt.sources.incremental[int] = dlt.sources.incremental("DocEntry"),
    ) -> Iterator[pa.Table]:
        params = {"$select": PAYMENT_FIELDS, "$orderby": "DocEntry"}
        if entry.start_value is not None:
            params["$filter"] = f"DocEntry gt {int(entry.start_value)}"
        with shared as client:
            for docs in pages(client, "IncomingPayments", params):
                table = _page_table(docs, "incoming_payments", validate_payment, PAYMENT_SCHEMA, quarantine)
                if table is not None:
                    yield table

    @dlt.source(name="sap_business_one", max_table_nesting=0)
    def sap_business_one() -> Any:
        return invoices, incoming_payments

    return sap_business_one()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"invoices": INVOICE_SCHEMA, "incoming_payments": PAYMENT_SCHEMA}
