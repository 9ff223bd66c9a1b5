"""The BigCommerce dlt source: orders (V2) with their products and payment transactions, and refunds (V3).

Each resource yields one Arrow table per page: scalars as typed columns, money as the decimal
text BigCommerce sent (V2 strings with 4 places; V3 numbers written out exactly), the RFC 2822
(V2) and RFC 3339 (V3) dates as UTC timestamps, nested structures (billing address, applied
discounts, refund items and payments, card details) as JSON text that dbt unnests.  Records that
fail validation go to the quarantine with the reason; the run goes on.

Incremental strategy:

- `orders` — `GET /v2/orders?min_date_modified=…` (RFC 2822) = the last run's largest
  `date_modified` minus a 2 h lookback, walked `sort=id:asc` (stable while orders change),
  `limit=250`, until a short page or the 204 BigCommerce answers past the end.  Payment, shipping,
  cancellation, refunds and edits all move `date_modified`.  The bound is inclusive; the lookback
  and the merge on `id` absorb the overlap.
- `order_products` and `transactions` — one `GET /v2/orders/{id}/products` and one
  `GET /v3/orders/{id}/transactions` per order of each orders page (BigCommerce has no list of
  either across orders), merged on their ids.  A transaction (purchase, refund) only ever appears
  on an order whose `date_modified` moved with it.
- `refunds` — `GET /v3/orders/payment_actions/refunds?created:min=…` (RFC 3339, inclusive) = the
  largest `created` seen minus a 2 h lookback.  Refunds are never edited.
"""
from __future__ import annotations

import email.utils
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.http.client import ApiClient
from finance_pipeline.http.pagination import page_number_pages
from finance_pipeline.ingest.arrow import JSON, TS, arrow_page, parse_timestamp
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, check_decimal, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.bigcommerce.client import make_client

LIMIT = 250
LOOKBACK_S = 2 * 3600
UTC = timezone.utc

ORDER_MONEY = ("subtotal_ex_tax", "subtotal_inc_tax", "subtotal_tax", "shipping_cost_ex_tax", "shipping_cost_inc_tax",
               "shipping_cost_tax", "handling_cost_ex_tax", "handling_cost_tax", "wrapping_cost_ex_tax",
               "wrapping_cost_tax", "total_ex_tax", "total_inc_tax", "total_tax", "discount_amount", "coupon_discount",
               "refunded_amount", "store_credit_amount", "gift_certificate_amount")
ORDER_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "customer_id": pa.int64(), "date_created": TS, "date_modified": TS, "date_shipped": TS,
    "status_id": pa.int64(), "status": pa.string(), "payment_method": pa.string(), "payment_status": pa.string(),
    "currency_code": pa.string(), "default_currency_code": pa.string(), "currency_exchange_rate": pa.string(),
    "store_default_currency_code": pa.string(), "store_default_to_transactional_exchange_rate": pa.string(),
    "items_total": pa.int64(), "is_deleted": pa.bool_(), "channel_id": pa.int64(), "order_source": pa.string(),
    "staff_notes": pa.string(), "customer_message": pa.string(), "tax_provider_id": pa.string(),
    **{name: pa.string() for name in ORDER_MONEY},
    "billing_address": JSON,
}
PRODUCT_MONEY = ("base_price", "price_ex_tax", "price_inc_tax", "price_tax", "base_total", "total_ex_tax",
                 "total_inc_tax", "total_tax")
PRODUCT_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "order_id": pa.int64(), "product_id": pa.int64(), "variant_id": pa.int64(),
    "name": pa.string(), "sku": pa.string(), "type": pa.string(), "quantity": pa.int64(),
    **{name: pa.string() for name in PRODUCT_MONEY},
    "applied_discounts": JSON, "product_options": JSON,
}
TRANSACTION_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "order_id": pa.int64(), "event": pa.string(), "method": pa.string(), "amount": pa.string(),
    "currency": pa.string(), "gateway": pa.string(), "gateway_transaction_id": pa.string(),
    "payment_method_id": pa.string(), "date_created": TS, "test": pa.bool_(), "status": pa.string(),
    "fraud_review": pa.bool_(), "credit_card": JSON,
}
REFUND_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.int64(), "order_id": pa.int64(), "user_id": pa.int64(), "created": TS, "reason": pa.string(),
    "total_amount": pa.string(), "total_tax": pa.string(), "uses_merchant_override_values": pa.bool_(),
    "payments": JSON, "items": JSON,
}


# ------------------------------------------------------------------------------------ parsing
def rfc2822(value: Any, name: str) -> datetime | None:
    """A V2 date ('Tue, 20 Nov 2012 00:00:00 +0000') as aware UTC; '' (never shipped) is None."""
    if value in (None, ""):
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        raise BadRecord(f"{name}={value!r} is not an RFC 2822 date") from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_rfc2822(at: datetime) -> str:
    return email.utils.format_datetime(parse_timestamp(at)).replace("-0000", "+0000")


def _number(record: dict, *names: str) -> None:
    """V3 money: a JSON number (parsed as Decimal or int), kept as its exact decimal text."""
    for name in names:
        value = record.get(name)
        if isinstance(value, bool) or not isinstance(value, (int, Decimal, str)):
            raise BadRecord(f"{name}={value!r} is not a number")
        try:
            record[name] = format(Decimal(str(value)), "f")
        except InvalidOperation:
            raise BadRecord(f"{name}={value!r} is not a number") from None


def _require_int(record: dict, *names: str) -> None:
    for name in names:
        value = record.get(name)
        if isinstance(value, str) and value.isdigit():  # V3 transactions give order_id as text
            record[name] = value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadRecord(f"{name}={value!r} is not an integer id")


def _v3_time(record: dict, name: str) -> None:
    try:
        record[name] = parse_timestamp(record.get(name))
    except (TypeError, ValueError):
        raise BadRecord(f"{name}={record.get(name)!r} is not an RFC 3339 date") from None
    if record[name] is None:
        raise BadRecord(f"{name} is missing")


def validate_order(order: dict) -> None:
    require(order, "id", "status_id", "currency_code", "date_created", "date_modified", "total_inc_tax")
    _require_int(order, "id", "status_id")
    check_currency(order["currency_code"])
    check_decimal(order, *(m for m in ORDER_MONEY if m in order))
    for name in ("date_created", "date_modified", "date_shipped"):
        order[name] = rfc2822(order.get(name), name)
    rate = order.get("store_default_to_transactional_exchange_rate") or order.get("currency_exchange_rate")
    try:
        if rate is None or Decimal(str(rate)) <= 0:
            raise BadRecord(f"exchange rate {rate!r} is not positive")
    except InvalidOperation:
        raise BadRecord(f"exchange rate {rate!r} is not a number") from None


def validate_product(product: dict) -> None:
    require(product, "id", "order_id", "quantity", "total_ex_tax", "total_tax")
    _require_int(product, "id", "order_id", "quantity")
    check_decimal(product, *(m for m in PRODUCT_MONEY if m in product))
    for d in product.get("applied_discounts") or ():
        check_decimal(d, "amount")


def validate_transaction(txn: dict) -> None:
    require(txn, "id", "order_id", "event", "amount", "status", "date_created")
    _require_int(txn, "id", "order_id")
    _number(txn, "amount")
    _v3_time(txn, "date_created")


def validate_refund(refund: dict) -> None:
    require(refund, "id", "order_id", "created", "total_amount")
    _require_int(refund, "id", "order_id")
    _number(refund, "total_amount", *(("total_tax",) if refund.get("total_tax") is not None else ()))
    _v3_time(refund, "created")
    for item in refund.get("items") or ():
        if item.get("requested_amount") is not None:
            _number(item, "requested_amount")


def _plain(value: Any) -> Any:
    """V3 numbers parsed as Decimal, nested in JSON columns, as their exact decimal text."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _valid(records: Iterable[Any], entity: str, check: Callable[[dict], None], quarantine: Quarantine) -> list[dict]:
    return [_plain(r) for r in quarantine.keep(entity, records, check)]


def v2_pages(client: ApiClient, path: str, params: dict[str, Any]) -> Iterator[list]:
    """V2 paging: `page` 1, 2, … with `limit`, until a short page or the 204 (empty body) past the end."""
    for body in page_number_pages(client, path, {**params, "limit": LIMIT}, page_size=LIMIT,
                                  items=lambda b: b if isinstance(b, list) else []):
        if body is None:
            return
        if not isinstance(body, list):
            raise BadRecord(f"{path} is not a JSON list")
        yield body


def v3_pages(client: ApiClient, path: str, params: dict[str, Any]) -> Iterator[list]:
    """V3 paging: `{"data": […], "meta": …}` pages until a short page or a 204."""
    for body in page_number_pages(client, path, {**params, "limit": LIMIT}, page_size=LIMIT,
                                  items=lambda b: (b or {}).get("data") or [] if isinstance(b, dict) else []):
        if body is None:
            return
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise BadRecord(f"{path} is not a V3 collection")
        yield body["data"]


def bigcommerce_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    """The dlt source.  With `connection=None` it builds (resource names for Dagster) and only
    fails when iterated."""
    quarantine = quarantine if quarantine is not None else Quarantine("bigcommerce")
    shared = SharedClient("bigcommerce", connection, make_client)

    @dlt.resource(name="orders", primary_key="id", write_disposition="merge")
    def orders(
        modified: dlt.sources.incremental[datetime] = dlt.sources.incremental("date_modified", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        params: dict[str, Any] = {"sort": "id:asc"}
        if modified.start_value is not None:
            params["min_date_modified"] = format_rfc2822(modified.start_value)
        with shared as client:
            for body in v2_pages(client, "v2/orders", params):
                rows = _valid(body, "orders", validate_order, quarantine)
                if rows:
                    yield arrow_page(rows, ORDER_SCHEMA)

    def _per_order(page: pa.Table, path: str, pages, entity: str, check, schema) -> Iterator[pa.Table]:
        with shared as client:
            rows: list[dict] = []
            for order_id in page.column("id").to_pylist():
                for body in pages(client, path.format(order_id=order_id), {}):
                    rows.extend(_valid(body, entity, check, quarantine))
            if rows:
                yield arrow_page(rows, schema)

    @dlt.transformer(data_from=orders, name="order_products", primary_key="id", write_disposition="merge")
    def order_products(page: pa.Table) -> Iterator[pa.Table]:
        yield from _per_order(page, "v2/orders/{order_id}/products", v2_pages, "order_products", validate_product,
                              PRODUCT_SCHEMA)

    @dlt.transformer(data_from=orders, name="transactions", primary_key="id", write_disposition="merge")
    def transactions(page: pa.Table) -> Iterator[pa.Table]:
        yield from _per_order(page, "v3/orders/{order_id}/transactions", v3_pages, "transactions",
                              validate_transaction, TRANSACTION_SCHEMA)

    @dlt.resource(name="refunds", primary_key="id", write_disposition="merge")
    def refunds(
        created: dlt.sources.incremental[datetime] = dlt.sources.incremental("created", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        params: dict[str, Any] = {}
        if created.start_value is not None:
            params["created:min"] = parse_timestamp(created.start_value).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        with shared as client:
            for body in v3_pages(client, "v3/orders/payment_actions/refunds", params):
                rows = _valid(body, "refunds", validate_refund, quarantine)
                if rows:
                    yield arrow_page(rows, REFUND_SCHEMA)

    @dlt.source(name="bigcommerce", max_table_nesting=0)
    def bigcommerce() -> Any:
        return orders, order_products, transactions, refunds

    return bigcommerce()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"orders": ORDER_SCHEMA, "order_products": PRODUCT_SCHEMA, "transactions": TRANSACTION_SCHEMA,
              "refunds": REFUND_SCHEMA}
