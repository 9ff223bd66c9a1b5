"""QuickBooks Online as a source: Invoices, Sales Receipts and Payments, incrementally, with deletes.

- New and changed records: the query language, `SELECT * FROM <Entity> WHERE MetaData.LastUpdatedTime
  >= '<cursor - 1 h>' ORDERBY MetaData.LastUpdatedTime STARTPOSITION n MAXRESULTS 1000`, page by page
  (STARTPOSITION += 1000 until a short page); the cursor is dlt's incremental on `updated_at` (UTC).
- Deletes: invisible to /query, so each run also asks CDC (`GET /cdc?entities=Invoice,SalesReceipt&
  changedSince=<cursor>`) and yields the deleted ids with `deleted = true`, a dlt hard-delete hint
  that removes them from the raw table.  CDC only looks back 30 days, counted on QuickBooks' clock
  (the `time` of its answers: the sandbox clock in the sandbox): when the cursor is older than that
  (by that reckoning, or because QuickBooks refuses `changedSince` as too old), the run re-lists the
  entity's ids instead (`SELECT Id FROM <Entity>`, 1,000 a page) and hard-deletes every id the
  warehouse holds that QuickBooks no longer lists.  Otherwise no re-list: runs stay incremental.
- The cursor query is `>=` with an hour's lookback (dlt's `lag`, which also turns off dlt's
  boundary de-duplication), merged by Id: a document saved at the very instant the last run's
  newest stamp carries (the sandbox clock stands still between `sandbox advance`s, so the publisher's
  writes share one stamp) is read again, never skipped.
- Voided documents stay, with zero amounts and PrivateNote "Voided" (`voided` column).
- Payments (ReceivePayment) are read the same way; `lines` keeps each line's `LinkedTxn` (the
  invoices a payment is applied to, and how much to each).
- One Arrow table per page: header fields typed, money as the exact decimal text QBO sent (staging
  casts), `Line` kept as JSON text that `stg_quickbooks__*_lines` unnests.

Records without an Id, with unparseable money or an unknown currency go to the quarantine.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.http.client import dumps
from finance_pipeline.ingest.arrow import JSON, TS, parse_timestamp, rows_to_arrow
from finance_pipeline.ingest.pipeline import loaded_keys
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, check_decimal, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.quickbooks.client import ServerClock, cdc, list_ids, make_client, query_pages

log = logging.getLogger("finance_pipeline.quickbooks.source")

LOOKBACK_S = 3600
CDC_WINDOW = timedelta(days=29)  # QBO answers CDC for the last 30 days
ENTITIES = {"invoices": "Invoice", "sales_receipts": "SalesReceipt", "payments": "Payment"}

SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "doc_number": pa.string(), "txn_date": pa.string(), "due_date": pa.string(),
    "customer_id": pa.string(), "customer_name": pa.string(), "currency": pa.string(),
    "exchange_rate": pa.string(), "total_amt": pa.string(), "total_tax": pa.string(), "balance": pa.string(),
    "global_tax_calculation": pa.string(), "private_note": pa.string(), "payment_ref_num": pa.string(),
    "sync_token": pa.string(), "voided": pa.bool_(), "deleted": pa.bool_(), "created_at": TS, "updated_at": TS,
    "lines": JSON, "unapplied_amt": pa.string(), "bill_country": pa.string(), "bill_email": pa.string(),
    "deposit_account_id": pa.string(),
}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def flatten(doc: dict) -> dict:
    """One QBO document as a raw row (money as exact text)."""
    require(doc, "Id")
    meta = doc.get("MetaData") or {}
    require(meta, "LastUpdatedTime")
    row = {
        "id": str(doc["Id"]), "doc_number": doc.get("DocNumber"), "txn_date": doc.get("TxnDate"),
        "due_date": doc.get("DueDate"), "customer_id": (doc.get("CustomerRef") or {}).get("value"),
        "customer_name": (doc.get("CustomerRef") or {}).get("name"),
        "currency": ((doc.get("CurrencyRef") or {}).get("value") or "").upper() or None,
        "exchange_rate": _text(doc.get("ExchangeRate")), "total_amt": _text(doc.get("TotalAmt")),
        "total_tax": _text((doc.get("TxnTaxDetail") or {}).get("TotalTax")), "balance": _text(doc.get("Balance")),
        "global_tax_calculation": doc.get("GlobalTaxCalculation"), "private_note": doc.get("PrivateNote"),
        "payment_ref_num": doc.get("PaymentRefNum"), "sync_token": _text(doc.get("SyncToken")),
        "voided": doc.get("PrivateNote") == "Voided", "deleted": False,
        "created_at": parse_timestamp(meta.get("CreateTime")), "updated_at": parse_timestamp(meta["LastUpdatedTime"]),
        "lines": dumps(doc.get("Line") or []).decode(),  # Decimals as exact JSON numbers
        "unapplied_amt": _text(doc.get("UnappliedAmt")),
        "bill_country": ((doc.get("BillAddr") or {}).get("Country") or "").upper() or None,
        "bill_email": (doc.get("BillEmail") or {}).get("Address"),
        "deposit_account_id": (doc.get("DepositToAccountRef") or {}).get("value"),
    }
    check_decimal(row, "total_amt", "total_tax", "balance", "exchange_rate", "unapplied_amt")
    for line in doc.get("Line") or []:
        check_decimal(line, "Amount")
    if row["currency"] is not None:
        check_currency(row["currency"])
    return row


def _table(rows: list[dict]) -> pa.Table:
    table = rows_to_arrow(rows, SCHEMA)
    index = table.schema.get_field_index("id")
    return table.cast(table.schema.set(index, table.schema.field(index).with_nullable(False)))


def _qbo_literal(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cdc_deletes(client: Any, entity: str, since: datetime, server: ServerClock) -> list[dict] | None:
    """The entity's deletions since `since` as hard-delete rows, from CDC; None when QuickBooks
    refuses `since` as older than CDC's window."""
    docs = cdc(client, entity, _qbo_literal(since), server)
    if docs is None:
        return None
    return [{"id": str(doc["Id"]), "deleted": True,
             "updated_at": parse_timestamp((doc.get("MetaData") or {}).get("LastUpdatedTime")) or server.now()}
            for doc in docs if doc.get("status") == "Deleted" and doc.get("Id")]


def relisted_deletes(client: Any, resource_name: str, entity: str, since: datetime,
                     server: ServerClock) -> list[dict]:
    """Hard-delete rows for every id the warehouse holds that QuickBooks no longer lists (`SELECT Id
    FROM <entity>`, paged): the deletions since `since` when CDC cannot look back that far.  Stamped
    with QuickBooks' time of the listing, by which they were gone (never the local clock, which the
    sandbox clock can be months behind)."""
    log.warning("quickbooks %s: cursor %s is older than CDC's 30 days; re-listing %s ids to find deletions",
                resource_name, since.isoformat(), entity)
    live = list_ids(client, entity, server)
    held = loaded_keys(resource_name, "id")
    gone = sorted(held - live)
    log.info("quickbooks %s: %d of %d ids in the warehouse are gone from QuickBooks", resource_name, len(gone),
             len(held))
    return [{"id": i, "deleted": True, "updated_at": server.now()} for i in gone]


def quickbooks_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("quickbooks")
    shared = SharedClient('quickbooks', connection, make_client)

    def make(resource_name: str, entity: str):  # noqa: ANN202
        @dlt.resource(name=resource_name, primary_key="id", write_disposition="merge",
                      columns={"deleted": {"hard_delete": True}})
        def read(updated_at: dlt.sources.incremental[datetime] = dlt.sources.incremental(
                "updated_at", initial_value=datetime(2000, 1, 1, tzinfo=timezone.utc), lag=LOOKBACK_S)
                 ) -> Iterator[pa.Table]:
            start = updated_at.start_value
            first = start is None or start <= datetime(2000, 1, 2, tzinfo=timezone.utc)
            where = "" if first else f"MetaData.LastUpdatedTime >= '{_qbo_literal(start - timedelta(seconds=LOOKBACK_S))}'"
            server = ServerClock()
            with shared as client:
                for page in query_pages(client, entity, where, order="MetaData.LastUpdatedTime", clock=server):
                    rows = []
                    for doc in page:
                        try:
                            rows.append(flatten(doc))
                        except BadRecord as exc:
                            quarantine.add(resource_name, doc, str(exc))
                    if rows:
                        yield _table(rows)
                if first:
                    return
                since = start - timedelta(seconds=LOOKBACK_S)
                deleted = None
                if server.now() - since <= CDC_WINDOW:
                    deleted = cdc_deletes(client, entity, since, server)
                if deleted is None:  # CDC cannot look back that far: whatever QuickBooks no longer lists
                    deleted = relisted_deletes(client, resource_name, entity, since, server)
                if deleted:
                    yield _table(deleted)
        return read

    @dlt.source(name="quickbooks", max_table_nesting=0)
    def quickbooks() -> Any:
        return tuple(make(name, entity) for name, entity in ENTITIES.items())

    return quickbooks()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {name: SCHEMA for name in ENTITIES}
