"""The WooCommerce dlt source: orders (with their payment) and refunds.

Each resource yields one Arrow table per page: scalar fields as typed columns, money as the
decimal strings WooCommerce sent, the UTC `*_gmt` dates as timestamps (the store-local `date_*`
twins are kept as text, for reference only), nested structures (line items, tax, shipping and
coupon lines, the refunds summary, addresses, meta data) as JSON text that dbt unnests.
Records that fail validation go to the quarantine with the reason; the run goes on.

Incremental strategy:

- `orders` — `modified_after` = the last run's largest `date_modified_gmt` minus a 2 h lookback,
  with `dates_are_gmt=true` (otherwise WooCommerce reads the value as store-local time) and
  `status=any`.  Payment, completion, refunds and edits all move `date_modified`, so late changes
  arrive.  The filter is exclusive; the lookback and the merge on `id` absorb the overlap.  Pages
  are walked `orderby=id&order=asc` (a stable order while orders change), `per_page=100`, until
  `X-WP-TotalPages`.
- `refunds` — `GET /refunds` (WooCommerce 9.0+), `after` = the largest `date_created_gmt` seen
  minus a 2 h lookback.  Refunds are never edited, so their creation date is their cursor.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.http.client import ApiClient
from finance_pipeline.ingest.arrow import JSON, TS, arrow_page, parse_timestamp
from finance_pipeline.ingest.quarantine import (BadRecord, Quarantine, check_currency, check_decimal, check_int_id,
                                                check_timestamps, require)
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.woocommerce.client import make_client

PER_PAGE = 100
LOOKBACK_S = 2 * 3600

ORDER_MONEY = ("discount_total", "discount_tax", "shipping_total", "shipping_tax", "cart_tax", "total", "total_tax")
ORDER_GMT = ("date_created_gmt", "date_modified_gmt", "date_paid_gmt", "date_completed_gmt")
ORDER_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "parent_id": pa.int64(), "number": pa.string(), "order_key": pa.string(),
    "status": pa.string(), "currency": pa.string(), "version": pa.string(), "prices_include_tax": pa.bool_(),
    "customer_id": pa.int64(), "payment_method": pa.string(), "payment_method_title": pa.string(),
    "transaction_id": pa.string(), "created_via": pa.string(), "customer_note": pa.string(),
    **{name: pa.string() for name in ORDER_MONEY},
    **{name: TS for name in ORDER_GMT},
    "date_created": pa.string(), "date_modified": pa.string(), "date_paid": pa.string(),
    "date_completed": pa.string(),
    "billing": JSON, "shipping": JSON, "line_items": JSON, "tax_lines": JSON, "shipping_lines": JSON,
    "fee_lines": JSON, "coupon_lines": JSON, "refunds": JSON, "meta_data": JSON,
}
REFUND_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "parent_id": pa.int64(), "date_created_gmt": TS, "date_created": pa.string(),
    "amount": pa.string(), "reason": pa.string(), "refunded_by": pa.int64(), "refunded_payment": pa.bool_(),
    "line_items": JSON, "shipping_lines": JSON, "fee_lines": JSON, "tax_lines": JSON, "meta_data": JSON,
}


# ------------------------------------------------------------------------------------ validation
def validate_order(order: dict) -> None:
    require(order, "id", "status", "currency", "date_created_gmt", "date_modified_gmt", "total")
    check_int_id(order, "id")
    check_currency(order["currency"])
    check_decimal(order, *ORDER_MONEY)
    check_timestamps(order, *ORDER_GMT)
    for line in order.get("line_items") or ():
        require(line, "id", "quantity")
        check_decimal(line, "subtotal", "subtotal_tax", "total", "total_tax")
    for line in order.get("shipping_lines") or ():
        check_decimal(line, "total", "total_tax")


def validate_refund(refund: dict) -> None:
    require(refund, "id", "parent_id", "date_created_gmt", "amount")
    check_int_id(refund, "id")
    check_int_id(refund, "parent_id")
    check_decimal(refund, "amount")
    check_timestamps(refund, "date_created_gmt")
    for line in refund.get("line_items") or ():
        require(line, "id", "quantity")
        check_decimal(line, "total", "total_tax")


def _gmt(value: datetime) -> str:
    """A UTC moment as WooCommerce takes it with `dates_are_gmt=true` (no offset)."""
    return parse_timestamp(value).strftime("%Y-%m-%dT%H:%M:%S")


def wp_pages(client: ApiClient, path: str, params: dict[str, Any]) -> Iterator[list]:
    """WordPress REST paging: `page` 1..`X-WP-TotalPages` (the total read from the first page,
    so a list growing during the walk cannot make it run forever); stops early on an empty page."""
    page, total_pages = 1, None
    while True:
        resp = client.get(path, params={**params, "page": page})
        body = resp.json()
        if total_pages is None:
            try:
                total_pages = int(resp.headers.get("x-wp-totalpages") or 0)
            except ValueError:
                total_pages = 0
        if not isinstance(body, list):
            raise BadRecord(f"{path} page {page} is not a JSON list")
        yield body
        if not body or page >= total_pages:
            return
        page += 1


def woocommerce_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    """The dlt source.  With `connection=None` it builds (resource names for Dagster) and only
    fails when iterated."""
    quarantine = quarantine if quarantine is not None else Quarantine("woocommerce")
    shared = SharedClient('woocommerce', connection, make_client)

    @dlt.resource(name="orders", primary_key="id", write_disposition="merge")
    def orders(
        modified: dlt.sources.incremental[datetime] = dlt.sources.incremental("date_modified_gmt", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        params: dict[str, Any] = {"status": "any", "per_page": PER_PAGE, "orderby": "id", "order": "asc",
                                  "dates_are_gmt": "true"}
        if modified.start_value is not None:
            params["modified_after"] = _gmt(modified.start_value)
        with shared as client:
            for body in wp_pages(client, "orders", params):
                rows = quarantine.keep("orders", body, validate_order)
                if rows:
                    yield arrow_page(rows, ORDER_SCHEMA)

    @dlt.resource(name="refunds", primary_key="id", write_disposition="merge")
    def refunds(
        created: dlt.sources.incremental[datetime] = dlt.sources.incremental("date_created_gmt", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        params: dict[str, Any] = {"per_page": PER_PAGE, "orderby": "id", "order": "asc", "dates_are_gmt": "true"}
        if created.start_value is not None:
            params["after"] = _gmt(created.start_value)
        with shared as client:
            for body in wp_pages(client, "refunds", params):
                rows = quarantine.keep("refunds", body, validate_refund)
                if rows:
                    yield arrow_page(rows, REFUND_SCHEMA)

    @dlt.source(name="woocommerce", max_table_nesting=0)
    def woocommerce() -> Any:
        return orders, refunds

    return woocommerce()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"orders": ORDER_SCHEMA, "refunds": REFUND_SCHEMA}
