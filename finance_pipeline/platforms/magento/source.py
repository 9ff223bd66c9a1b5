"""The Magento dlt source: orders (with their payment) and credit memos.

Each resource yields one Arrow table per page: scalars as typed columns, money as the exact
decimal text of Magento's JSON numbers (parsed as `Decimal`, never float), `created_at` /
`updated_at` (UTC without offset) as timestamps, nested structures (items, payment, addresses,
extension attributes, comments) as JSON text that dbt unnests.  Bad records are quarantined.

Incremental strategy (both resources): `searchCriteria` filter `updated_at gteq` the last run's
largest `updated_at` minus a 2 h lookback, sorted `updated_at ASC, entity_id ASC`, `pageSize=100`,
pages walked until `current_page * page_size >= total_count` (the count read on the first page,
so a list growing during the walk cannot make it loop; a page past the end is empty on 2.4.x
and the last page again on older versions, hence the count).  Invoicing, shipping, credit memos,
cancellation and edits all save the order and move its `updated_at`; the merge on `entity_id`
absorbs the overlap.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator

import dlt
import orjson
import pyarrow as pa

from finance_pipeline.http.client import ApiClient, json_default
from finance_pipeline.ingest.arrow import JSON, TS, arrow_page, parse_timestamp
from finance_pipeline.ingest.quarantine import (BadRecord, Quarantine, check_currency, check_decimal, check_int_id,
                                                check_timestamps, require)
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.magento.client import make_client

PAGE_SIZE = 100
LOOKBACK_S = 2 * 3600

ORDER_MONEY = ("subtotal", "subtotal_incl_tax", "discount_amount", "shipping_amount", "shipping_incl_tax",
               "shipping_tax_amount", "tax_amount", "grand_total", "base_grand_total", "base_tax_amount",
               "total_paid", "total_refunded", "total_due", "base_to_order_rate", "base_to_global_rate",
               "base_shipping_amount", "base_shipping_tax_amount")
ORDER_SCHEMA: dict[str, pa.DataType] = {
    "entity_id": pa.int64(), "increment_id": pa.string(), "state": pa.string(), "status": pa.string(),
    "created_at": TS, "updated_at": TS, "customer_id": pa.int64(), "customer_email": pa.string(),
    "customer_is_guest": pa.int64(), "base_currency_code": pa.string(), "order_currency_code": pa.string(),
    "global_currency_code": pa.string(), "coupon_code": pa.string(),
    **{name: pa.string() for name in ORDER_MONEY},
    "items": JSON, "payment": JSON, "billing_address": JSON, "status_histories": JSON, "extension_attributes": JSON,
}
MEMO_MONEY = ("subtotal", "subtotal_incl_tax", "discount_amount", "shipping_amount", "shipping_incl_tax",
              "shipping_tax_amount", "tax_amount", "adjustment", "grand_total", "base_grand_total",
              "base_to_order_rate", "base_shipping_amount", "base_shipping_tax_amount", "base_tax_amount")
MEMO_SCHEMA: dict[str, pa.DataType] = {
    "entity_id": pa.int64(), "increment_id": pa.string(), "order_id": pa.int64(), "state": pa.int64(),
    "created_at": TS, "updated_at": TS, "base_currency_code": pa.string(), "order_currency_code": pa.string(),
    **{name: pa.string() for name in MEMO_MONEY},
    "items": JSON, "comments": JSON,
}


def _text(value: Any) -> Any:
    """Money as exact text; nested values as JSON text (Decimals as exact JSON numbers)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, default=json_default).decode()
    return value


def _check_money(record: dict, *names: str) -> None:
    for name in names:
        value = record.get(name)
        if value is not None and not isinstance(value, (int, Decimal)) or isinstance(value, bool):
            raise BadRecord(f"{name}={value!r} is not a number")
    check_decimal(record, *names)


def validate_order(order: dict) -> None:
    require(order, "entity_id", "created_at", "updated_at", "order_currency_code", "grand_total")
    check_int_id(order, "entity_id")
    check_currency(order["order_currency_code"], "order_currency_code")
    check_currency(order.get("base_currency_code"), "base_currency_code")
    _check_money(order, *ORDER_MONEY)
    check_timestamps(order, "created_at", "updated_at", kind="a date")
    for item in order.get("items") or ():
        require(item, "item_id", "qty_ordered")
        _check_money(item, "row_total_incl_tax", "discount_amount", "tax_amount", "tax_percent")


def validate_memo(memo: dict) -> None:
    require(memo, "entity_id", "order_id", "created_at", "grand_total")
    check_int_id(memo, "entity_id")
    check_int_id(memo, "order_id")
    _check_money(memo, *MEMO_MONEY)
    check_timestamps(memo, "created_at", "updated_at", kind="a date")
    for item in memo.get("items") or ():
        require(item, "order_item_id", "qty")
        _check_money(item, "row_total_incl_tax", "discount_amount", "tax_amount")


def _valid(records: Iterable[Any], entity: str, check: Callable[[dict], None], quarantine: Quarantine) -> list[dict]:
    """The records `check` accepts, their cells as text (`_text`); the others set aside, named by entity_id."""
    return [{k: _text(v) for k, v in r.items()} for r in quarantine.keep(entity, records, check, key="entity_id")]


def search_pages(client: ApiClient, path: str, updated_from: datetime | None) -> Iterator[list]:
    params: dict[str, Any] = {
        "searchCriteria[sortOrders][0][field]": "updated_at", "searchCriteria[sortOrders][0][direction]": "ASC",
        "searchCriteria[sortOrders][1][field]": "entity_id", "searchCriteria[sortOrders][1][direction]": "ASC",
        "searchCriteria[pageSize]": PAGE_SIZE,
    }
    if updated_from is not None:
        params.update({
            "searchCriteria[filter_groups][0][filters][0][field]": "updated_at",
            "searchCriteria[filter_groups][0][filters][0][value]": parse_timestamp(updated_from).strftime("%Y-%m-%d %H:%M:%S"),
            "searchCriteria[filter_groups][0][filters][0][condition_type]": "gteq",
        })
    page, total = 1, None
    while True:
        body = client.get_json(path, params={**params, "searchCriteria[currentPage]": page})
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise BadRecord(f"{path} page {page} has no items list")
        if total is None:
            total = int(body.get("total_count") or 0)
        yield body["items"]
        if not body["items"] or page * PAGE_SIZE >= total:
            return
        page += 1


def magento_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("magento")
    shared = SharedClient('magento', connection, make_client)

    @dlt.resource(name="orders", primary_key="entity_id", write_disposition="merge")
    def orders(
        updated: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        with shared as client:
            for items in search_pages(client, "orders", updated.start_value):
                rows = _valid(items, "orders", validate_order, quarantine)
                if rows:
                    yield arrow_page(rows, ORDER_SCHEMA, keys=("entity_id",))

    @dlt.resource(name="creditmemos", primary_key="entity_id", write_disposition="merge")
    def creditmemos(
        updated: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        with shared as client:
            for items in search_pages(client, "creditmemos", updated.start_value):
                rows = _valid(items, "creditmemos", validate_memo, quarantine)
                if rows:
                    yield arrow_page(rows, MEMO_SCHEMA, keys=("entity_id",))

    @dlt.source(name="magento", max_table_nesting=0)
    def magento() -> Any:
        return orders, creditmemos

    return magento()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"orders": ORDER_SCHEMA, "creditmemos": MEMO_SCHEMA}
