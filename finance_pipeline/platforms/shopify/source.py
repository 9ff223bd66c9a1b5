"""The Shopify dlt source: orders, Shopify Payments payouts and balance transactions.

Each resource yields one Arrow table per API page (DESIGN §5): scalar fields as typed columns,
money as the decimal strings Shopify sent, timestamps as UTC, nested structures (line items,
tax lines, refunds, customer, addresses, payment terms, every `*_set` MoneyBag) as JSON text
that the dbt staging models unnest.  Records that fail validation go to the quarantine with
the reason and are not loaded; the run goes on.

Incremental strategy, per resource:

- `orders` — `status=any` (the default `open` hides closed and cancelled orders) and
  `updated_at_min` = the last run's largest `updated_at` minus a 2 h lookback.  Refunds,
  cancellations and edits bump an order's `updated_at`, so late changes to old orders arrive
  (scenarios P13, R8); the lookback absorbs clock skew and late indexing, the merge on `id`
  absorbs the overlap.  Refunds come embedded in the order, card payments from the balance
  transactions.
- `order_transactions` — for the few orders whose `payment_gateway_names` name a gateway other
  than Shopify Payments (a gift card tender, scenario S12), `orders/{id}/transactions.json`: the
  only record of what the gift card paid.  It follows the orders resource page by page.
- `payouts` — `date_min` = the last payout date seen minus 3 days (a payout appears only once
  it has been paid out, and may appear a little late).
- `balance_transactions` — the endpoint has no time filter, only `since_id`/`last_id`, and
  lists newest first (by `processed_at`).  A transaction is first listed `pending` with no
  `payout_id` and later `paid` with one, so a run must look again at everything that was still
  pending.  The resource state keeps `resume_processed_at`: the `processed_at` of the oldest
  transaction still pending on the last run (or, if none was, of the newest seen).  The next run
  walks newest-first and stops after the first page reaching below that mark minus a lookback.
  `since_id` is deliberately not used: ids are not guaranteed to follow processing time
  (a refund recorded late can carry an older id), and an id walk would miss it for good.

`FINANCE_SHOPIFY_API=graphql` reads orders through the GraphQL Admin API instead
(`graphql_order_pages`): a bulk operation for the backfill, paged `orders(query:
"updated_at:>='…'")` afterwards, converted to the same REST objects, so the raw table is the
same; payouts and balance transactions stay on REST (docs/decisions.md).
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.http.pagination import link_header_pages, read_ahead
from finance_pipeline.ingest.arrow import JSON, TS, arrow_page, parse_timestamp
from finance_pipeline.ingest.quarantine import (BadRecord, Quarantine, check_currency, check_decimal, check_int_id,
                                                check_timestamps, require)
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.shopify.client import make_client

log = logging.getLogger("finance_pipeline.shopify")

PAGE_SIZE = 250
ORDERS_LOOKBACK_S = 2 * 3600
PAYOUTS_LOOKBACK_DAYS = 3
BALANCE_LOOKBACK = timedelta(hours=2)

ORDER_MONEY = ("total_price", "subtotal_price", "total_tax", "total_discounts", "total_line_items_price",
               "current_total_price", "current_subtotal_price", "current_total_tax", "current_total_discounts",
               "total_outstanding")
ORDER_TIMES = ("created_at", "processed_at", "updated_at", "cancelled_at", "closed_at")
ORDER_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "admin_graphql_api_id": pa.string(), "name": pa.string(), "order_number": pa.int64(),
    "email": pa.string(),
    **{name: TS for name in ORDER_TIMES},
    "cancel_reason": pa.string(), "financial_status": pa.string(), "fulfillment_status": pa.string(),
    "currency": pa.string(), "presentment_currency": pa.string(), "taxes_included": pa.bool_(),
    "tax_exempt": pa.bool_(), "test": pa.bool_(), "source_name": pa.string(), "tags": pa.string(),
    "note": pa.string(),
    **{name: pa.string() for name in ORDER_MONEY},
    **{f"{name}_set": JSON for name in ORDER_MONEY if name != "total_outstanding"},
    "total_shipping_price_set": JSON,
    "customer": JSON, "billing_address": JSON, "shipping_address": JSON, "line_items": JSON,
    "shipping_lines": JSON, "tax_lines": JSON, "discount_codes": JSON, "discount_applications": JSON,
    "refunds": JSON, "payment_terms": JSON, "payment_gateway_names": JSON, "fulfillments": JSON,
}
PAYOUT_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "status": pa.string(), "date": pa.date32(), "currency": pa.string(),
    "amount": pa.string(), "summary": JSON,
}
BALANCE_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "type": pa.string(), "test": pa.bool_(), "payout_id": pa.int64(),
    "payout_status": pa.string(), "currency": pa.string(), "amount": pa.string(), "fee": pa.string(),
    "net": pa.string(), "source_id": pa.int64(), "source_type": pa.string(), "source_order_id": pa.int64(),
    "source_order_transaction_id": pa.int64(), "processed_at": TS,
}

TRANSACTION_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "order_id": pa.int64(), "kind": pa.string(), "gateway": pa.string(), "status": pa.string(),
    "amount": pa.string(), "currency": pa.string(), "created_at": TS, "processed_at": TS,
    "authorization": pa.string(), "parent_id": pa.int64(), "source_name": pa.string(), "test": pa.bool_(),
    "payment_id": pa.string(), "receipt": JSON,
}
# what Shopify Payments balance transactions already show; any other gateway (a gift card) is not there
BALANCE_GATEWAYS = frozenset({"shopify_payments"})

# ------------------------------------------------------------------------------------ validation
def validate_order(order: dict) -> None:
    require(order, "id", "created_at", "updated_at", "currency", "presentment_currency")
    check_int_id(order, "id")
    check_currency(order["currency"])
    check_currency(order["presentment_currency"], "presentment_currency")
    check_decimal(order, *ORDER_MONEY)
    check_timestamps(order, *ORDER_TIMES, kind="an ISO 8601 timestamp")
    for line in order.get("line_items") or ():
        require(line, "id")
        check_decimal(line, "price", "total_discount")
    for refund in order.get("refunds") or ():
        require(refund, "id", "created_at")
        for txn in refund.get("transactions") or ():
            check_decimal(txn, "amount")


def validate_transaction(txn: dict) -> None:
    require(txn, "id", "order_id", "kind", "gateway", "status", "amount", "currency", "created_at")
    check_int_id(txn, "id")
    check_int_id(txn, "order_id")
    check_currency(txn["currency"])
    check_decimal(txn, "amount")
    check_timestamps(txn, "created_at", "processed_at", kind="an ISO 8601 timestamp")


def tendered_elsewhere(page: pa.Table) -> list[int]:
    """Ids of the page's orders that a gateway other than Shopify Payments was charged for (a gift
    card): their transactions are the only record of that tender."""
    import orjson

    out = []
    for oid, names in zip(page.column("id").to_pylist(), page.column("payment_gateway_names").to_pylist()):
        gateways = orjson.loads(names) if isinstance(names, str) else names or []
        if any(g not in BALANCE_GATEWAYS for g in gateways):
            out.append(oid)
    return out


def validate_payout(payout: dict) -> None:
    require(payout, "id", "date", "currency", "amount")
    check_int_id(payout, "id")
    check_currency(payout["currency"])
    check_decimal(payout, "amount")
    try:
        payout["date"] = date.fromisoformat(str(payout["date"])[:10])
    except ValueError:
        raise BadRecord(f"date={payout['date']!r} is not a date") from None


def validate_balance_transaction(txn: dict) -> None:
    require(txn, "id", "type", "currency", "amount", "net", "processed_at")
    check_int_id(txn, "id")
    check_currency(txn["currency"])
    check_decimal(txn, "amount", "fee", "net")
    check_timestamps(txn, "processed_at", kind="an ISO 8601 timestamp")


# ------------------------------------------------------------------------------------ plumbing
def _utc_iso(value: Any) -> str:
    return parse_timestamp(value).isoformat()


# ------------------------------------------------------------------------------------ GraphQL orders
def graphql_order_pages(connection: Connection, start: datetime | None, quarantine: Quarantine) -> Iterator[pa.Table]:
    """Orders through the GraphQL Admin API (`FINANCE_SHOPIFY_API=graphql`), as the same Arrow
    pages the REST path yields: a backfill (no cursor yet) runs one bulk operation and streams
    its JSONL result; an incremental run pages `orders(query: "updated_at:>='…'")`.  Each node is
    converted to the REST object (`graphql_client.RestShape`) and validated like a REST order."""
    from decimal import InvalidOperation

    from finance_pipeline.platforms.shopify.client import make_graphql_client
    from finance_pipeline.platforms.shopify.graphql_client import RestShape, bulk_orders_query, rebuild_orders

    client = make_graphql_client(connection)
    try:
        shape = RestShape(client.shop_timezone())
        if start is None:
            operation = client.run_bulk(bulk_orders_query(None))
            log.info("shopify graphql: bulk operation %s completed with %s objects", operation.get("id"),
                     operation.get("objectCount"))
            batches: Iterable[list[dict]] = _batched(rebuild_orders(client.bulk_lines(operation)), PAGE_SIZE)
        else:
            since = parse_timestamp(start).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            batches = client.paged_orders(f"updated_at:>='{since}'")
        for nodes in batches:
            rows = []
            for node in nodes:
                try:
                    if not isinstance(node, dict):
                        raise BadRecord("not a JSON object")
                    rows.append(shape.order(node))
                except BadRecord as exc:
                    quarantine.add("orders", node, str(exc), record_id=_node_id(node))
                except (KeyError, TypeError, ValueError, AttributeError, InvalidOperation) as exc:
                    quarantine.add("orders", node, f"GraphQL order not convertible: {type(exc).__name__}: {exc}",
                                   record_id=_node_id(node))
            rows = quarantine.keep("orders", rows, validate_order)
            if rows:
                yield arrow_page(rows, ORDER_SCHEMA)
    finally:
        client.close()


def _node_id(node: Any) -> Any:
    return node.get("legacyResourceId") or node.get("id") if isinstance(node, dict) else None


def _batched(items: Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ------------------------------------------------------------------------------------ the source
def shopify_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    """The dlt source.  With `connection=None` it builds (resource names for Dagster) and only
    fails when iterated."""
    quarantine = quarantine if quarantine is not None else Quarantine("shopify")
    shared = SharedClient('shopify', connection, make_client)

    @dlt.resource(name="orders", primary_key="id", write_disposition="merge")
    def orders(
        updated_at: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at", lag=ORDERS_LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        if connection is not None and getattr(connection.settings, "shopify_api", "rest") == "graphql":
            yield from graphql_order_pages(connection, updated_at.start_value, quarantine)
            return
        params: dict[str, Any] = {"status": "any", "limit": PAGE_SIZE}
        if updated_at.start_value is not None:
            params["updated_at_min"] = _utc_iso(updated_at.start_value)
        with shared as client:
            # the next page is fetched while this one is checked, converted and loaded
            for body in read_ahead(link_header_pages(client, "orders.json", params)):
                rows = quarantine.keep("orders", body.get("orders") or [], validate_order)
                if rows:
                    yield arrow_page(rows, ORDER_SCHEMA)

    @dlt.transformer(name="order_transactions", data_from=orders, primary_key="id", write_disposition="merge")
    def order_transactions(page: pa.Table) -> Iterator[pa.Table]:
        """The transactions of orders on the page that were paid (in part) outside Shopify Payments:
        `orders/{id}/transactions.json`, one call per such order (a few in a thousand: gift card
        tenders; the card payments are in the balance transactions).  Orders re-synced by the
        updated-at cursor are read again; the merge on `id` keeps one row per transaction."""
        ids = tendered_elsewhere(page)
        if not ids:
            return
        rows: list[dict] = []
        with shared as client:
            for oid in ids:
                rows.extend(client.get_json(f"orders/{oid}/transactions.json").get("transactions") or [])
        rows = quarantine.keep("order_transactions", rows, validate_transaction)
        if rows:
            yield arrow_page(rows, TRANSACTION_SCHEMA)

    @dlt.resource(name="payouts", primary_key="id", write_disposition="merge")
    def payouts(
        payout_date: dlt.sources.incremental[date] = dlt.sources.incremental("date", lag=PAYOUTS_LOOKBACK_DAYS),
    ) -> Iterator[pa.Table]:
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if payout_date.start_value is not None:
            params["date_min"] = payout_date.start_value.isoformat()[:10]
        with shared as client:
            for body in link_header_pages(client, "shopify_payments/payouts.json", params):
                rows = quarantine.keep("payouts", body.get("payouts") or [], validate_payout)
                if rows:
                    yield arrow_page(rows, PAYOUT_SCHEMA)

    @dlt.resource(name="balance_transactions", primary_key="id", write_disposition="merge")
    def balance_transactions() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        resume = state.get("resume_processed_at")
        stop_below = parse_timestamp(resume) - BALANCE_LOOKBACK if resume else None
        newest: datetime | None = None
        oldest_pending: datetime | None = None
        with shared as client:
            pages = link_header_pages(client, "shopify_payments/balance/transactions.json", {"limit": PAGE_SIZE})
            for body in pages:
                rows = quarantine.keep("balance_transactions", body.get("transactions") or [],
                                       validate_balance_transaction)
                page_oldest = None
                for row in rows:
                    at = parse_timestamp(row["processed_at"])
                    newest = at if newest is None or at > newest else newest
                    page_oldest = at if page_oldest is None or at < page_oldest else page_oldest
                    if row.get("payout_status") != "paid":
                        oldest_pending = at if oldest_pending is None or at < oldest_pending else oldest_pending
                if rows:
                    yield arrow_page(rows, BALANCE_SCHEMA)
                if stop_below is not None and page_oldest is not None and page_oldest < stop_below:
                    pages.close()
                    break
        mark = oldest_pending or newest
        if mark is not None:
            state["resume_processed_at"] = mark.astimezone(timezone.utc).isoformat()

    @dlt.source(name="shopify", max_table_nesting=0)
    def shopify() -> Any:
        return orders, order_transactions, payouts, balance_transactions

    return shopify()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"orders": ORDER_SCHEMA, "order_transactions": TRANSACTION_SCHEMA, "payouts": PAYOUT_SCHEMA,
              "balance_transactions": BALANCE_SCHEMA}
