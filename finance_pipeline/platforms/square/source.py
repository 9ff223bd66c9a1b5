"""The Square dlt source: orders, payments, refunds, payouts and payout entries, catalog variations.

One Arrow table per API page (DESIGN §5): top-level scalars as typed columns, every nested
value (Money objects, line items, returns, tenders, processing fees, card and cash details) as
JSON text the dbt staging models unnest.  Money stays in integer minor units as Square sends it.
Records that fail validation go to the quarantine with the reason; the run goes on.

Incremental strategy (cursors in dlt state, merge on `id`):

- `orders` — SearchOrders over every location, `date_time_filter.updated_at.start_at` = last
  `updated_at` minus 2 h, sorted by UPDATED_AT ascending (Square requires the sort field to match
  the filter).  Returns are separate orders, created when the refund is made.
- `payments`, `refunds` — `updated_at_begin_time` = last `updated_at` minus 2 h, sorted by
  UPDATED_AT.  `begin_time` (created_at) is always sent far back: Square defaults it to one year
  ago, which would hide an old payment refunded today.  A payment's `updated_at` moves when its
  processing fee is computed and when it is refunded.
- `payouts` — ListPayouts filters on creation only; `begin_time` = the newest payout seen minus
  3 days re-reads recent payouts until SENT has become PAID.
- `payout_entries` — entries of every payout listed in the same window (entries never change).
- `catalog_variations` — the SKUs behind line items' `catalog_object_id` (small; read in full).
- ListPayments and ListPayouts default to the main location only, so every location is listed.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.http.client import ApiClient
from finance_pipeline.http.pagination import body_cursor_pages
from finance_pipeline.ingest.arrow import JSON, TS, arrow_page, parse_timestamp
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, check_timestamps, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.square.client import make_client

log = logging.getLogger("finance_pipeline.square")

LOOKBACK_S = 2 * 3600
PAYOUT_LOOKBACK = timedelta(days=3)
ALL_TIME = "2013-01-01T00:00:00Z"  # before any Square seller's first payment: overrides the one-year default

PAYMENT_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "created_at": TS, "updated_at": TS, "status": pa.string(), "source_type": pa.string(),
    "location_id": pa.string(), "order_id": pa.string(), "customer_id": pa.string(), "receipt_number": pa.string(),
    "amount_money": JSON, "total_money": JSON, "approved_money": JSON, "refunded_money": JSON, "tip_money": JSON,
    "app_fee_money": JSON, "processing_fee": JSON, "refund_ids": JSON, "card_details": JSON, "cash_details": JSON,
    "delay_action": pa.string(), "version_token": pa.string(),
}
REFUND_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "status": pa.string(), "payment_id": pa.string(), "order_id": pa.string(),
    "location_id": pa.string(), "reason": pa.string(), "destination_type": pa.string(), "created_at": TS,
    "updated_at": TS, "amount_money": JSON, "processing_fee": JSON,
}
ORDER_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "location_id": pa.string(), "state": pa.string(), "version": pa.int64(),
    "customer_id": pa.string(), "ticket_name": pa.string(), "created_at": TS, "updated_at": TS, "closed_at": TS,
    "source": JSON, "line_items": JSON, "returns": JSON, "taxes": JSON, "discounts": JSON, "tenders": JSON,
    "refunds": JSON, "total_money": JSON, "total_tax_money": JSON, "total_discount_money": JSON,
    "total_tip_money": JSON, "total_service_charge_money": JSON, "net_amounts": JSON, "return_amounts": JSON,
}
PAYOUT_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "status": pa.string(), "location_id": pa.string(), "created_at": TS, "updated_at": TS,
    "amount_money": JSON, "arrival_date": pa.date32(), "type": pa.string(), "version": pa.int64(),
    "end_to_end_id": pa.string(), "destination": JSON,
}
ENTRY_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "payout_id": pa.string(), "effective_at": TS, "type": pa.string(),
    "gross_amount_money": JSON, "fee_amount_money": JSON, "net_amount_money": JSON,
    "type_charge_details": JSON, "type_refund_details": JSON,
}
VARIATION_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "type": pa.string(), "updated_at": TS, "version": pa.int64(), "is_deleted": pa.bool_(),
    "item_id": pa.string(), "name": pa.string(), "sku": pa.string(), "price_money": JSON,
}


# ------------------------------------------------------------------------------------ validation
def check_money(obj: Any, field: str, required: bool = False) -> None:
    """A Square Money object: integer `amount` (minor units) and a known `currency`.  Square's
    payout-entry examples spell the currency `currency_code`; both are accepted."""
    if obj is None:
        if required:
            raise BadRecord(f"missing {field}")
        return
    if not isinstance(obj, dict):
        raise BadRecord(f"{field}={obj!r} is not a Money object")
    amount = obj.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise BadRecord(f"{field}.amount={amount!r} is not an integer amount of minor units")
    check_currency(obj.get("currency") or obj.get("currency_code"), f"{field}.currency")


def validate_payment(p: dict) -> None:
    require(p, "id", "created_at", "updated_at", "status", "source_type")
    check_timestamps(p, "created_at", "updated_at", kind="an RFC 3339 timestamp")
    check_money(p.get("amount_money"), "amount_money", required=True)
    for name in ("total_money", "approved_money", "refunded_money", "tip_money", "app_fee_money"):
        check_money(p.get(name), name)
    for n, fee in enumerate(p.get("processing_fee") or ()):
        check_money(fee.get("amount_money") if isinstance(fee, dict) else fee, f"processing_fee[{n}].amount_money", True)


def validate_refund(r: dict) -> None:
    require(r, "id", "payment_id", "status", "created_at")
    check_timestamps(r, "created_at", "updated_at", kind="an RFC 3339 timestamp")
    check_money(r.get("amount_money"), "amount_money", required=True)


def validate_order(o: dict) -> None:
    require(o, "id", "location_id", "state", "created_at", "updated_at")
    check_timestamps(o, "created_at", "updated_at", "closed_at", kind="an RFC 3339 timestamp")
    lines = list(o.get("line_items") or ()) + [x for ret in o.get("returns") or () for x in ret.get("return_line_items") or ()]
    for n, line in enumerate(lines):
        if not isinstance(line, dict) or not line.get("uid"):
            raise BadRecord(f"line {n} has no uid")
        try:
            if int(str(line.get("quantity"))) <= 0:
                raise ValueError
        except ValueError:
            raise BadRecord(f"line {line['uid']}: quantity={line.get('quantity')!r} is not a positive whole number") from None
        for name in ("base_price_money", "total_tax_money", "total_discount_money", "total_money"):
            check_money(line.get(name), f"line {line['uid']} {name}", required=True)


def validate_payout(p: dict) -> None:
    require(p, "id", "status", "created_at", "arrival_date")
    check_timestamps(p, "created_at", "updated_at", kind="an RFC 3339 timestamp")
    check_money(p.get("amount_money"), "amount_money", required=True)
    try:
        p["arrival_date"] = date.fromisoformat(str(p["arrival_date"])[:10])
    except ValueError:
        raise BadRecord(f"arrival_date={p['arrival_date']!r} is not a date") from None


def validate_entry(e: dict) -> None:
    require(e, "id", "payout_id", "type", "effective_at")
    check_timestamps(e, "effective_at", kind="an RFC 3339 timestamp")
    for name in ("gross_amount_money", "fee_amount_money", "net_amount_money"):
        check_money(e.get(name), name, required=True)


def _rfc3339(value: Any) -> str:
    return parse_timestamp(value).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _SharedClient(SharedClient[ApiClient]):
    """The shared client, plus the merchant's location ids (read once per source instance)."""

    def __init__(self, connection: Connection | None) -> None:
        super().__init__("square", connection, make_client)
        self.locations: list[str] | None = None

    def location_ids(self, client: ApiClient) -> list[str]:
        if self.locations is None:
            body = client.get_json("v2/locations")
            self.locations = sorted(loc["id"] for loc in body.get("locations") or [] if loc.get("id"))
        return self.locations


def square_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    """The dlt source.  With `connection=None` it builds (resource names for Dagster) and only
    fails when iterated."""
    quarantine = quarantine if quarantine is not None else Quarantine("square")
    shared = _SharedClient(connection)

    def _updated_list(path: str, items: str, schema: dict, check: Callable, start: Any) -> Iterator[pa.Table]:
        params: dict[str, Any] = {"begin_time": ALL_TIME, "sort_field": "UPDATED_AT", "sort_order": "ASC", "limit": 100}
        if start is not None:
            params["updated_at_begin_time"] = _rfc3339(start)
        with shared as client:
            for location in shared.location_ids(client):
                for body in body_cursor_pages(client, path, {**params, "location_id": location}):
                    rows = quarantine.keep(items, body.get(items) or [], check)
                    if rows:
                        yield arrow_page(rows, schema)

    @dlt.resource(name="payments", primary_key="id", write_disposition="merge")
    def payments(
        updated_at: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        yield from _updated_list("v2/payments", "payments", PAYMENT_SCHEMA, validate_payment, updated_at.start_value)

    @dlt.resource(name="refunds", primary_key="id", write_disposition="merge")
    def refunds(
        updated_at: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        yield from _updated_list("v2/refunds", "refunds", REFUND_SCHEMA, validate_refund, updated_at.start_value)

    @dlt.resource(name="orders", primary_key="id", write_disposition="merge")
    def orders(
        updated_at: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        query: dict[str, Any] = {"sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}}
        if updated_at.start_value is not None:
            query["filter"] = {"date_time_filter": {"updated_at": {"start_at": _rfc3339(updated_at.start_value)}}}
        with shared as client:
            locations = shared.location_ids(client)
            for i in range(0, len(locations), 10):  # SearchOrders takes at most 10 locations
                body = {"location_ids": locations[i:i + 10], "query": query, "limit": 500}
                for page in body_cursor_pages(client, "v2/orders/search", method="POST", json=body):
                    rows = quarantine.keep("orders", page.get("orders") or [], validate_order)
                    if rows:
                        yield arrow_page(rows, ORDER_SCHEMA)

    def _payout_pages(client: ApiClient, since: datetime | None) -> Iterator[list[dict]]:
        params: dict[str, Any] = {"begin_time": _rfc3339(since - PAYOUT_LOOKBACK) if since else ALL_TIME,
                                  "sort_order": "ASC", "limit": 100}
        for location in shared.location_ids(client):
            for body in body_cursor_pages(client, "v2/payouts", {**params, "location_id": location}):
                yield quarantine.keep("payouts", body.get("payouts") or [], validate_payout)

    def _mark(state: dict, key: str, rows: list[dict]) -> None:
        for row in rows:
            at = parse_timestamp(row["created_at"]).isoformat()
            if state.get(key) is None or at > state[key]:
                state[key] = at

    @dlt.resource(name="payouts", primary_key="id", write_disposition="merge")
    def payouts() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        since = parse_timestamp(state["newest_created_at"]) if state.get("newest_created_at") else None
        with shared as client:
            for rows in _payout_pages(client, since):
                _mark(state, "newest_created_at", rows)
                if rows:
                    yield arrow_page(rows, PAYOUT_SCHEMA)

    @dlt.resource(name="payout_entries", primary_key="id", write_disposition="merge")
    def payout_entries() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        since = parse_timestamp(state["newest_payout_at"]) if state.get("newest_payout_at") else None
        with shared as client:
            for rows in _payout_pages(client, since):
                for payout in rows:
                    path = f"v2/payouts/{payout['id']}/payout-entries"
                    for body in body_cursor_pages(client, path, {"sort_order": "ASC", "limit": 100}):
                        entries = quarantine.keep("payout_entries", body.get("payout_entries") or [], validate_entry)
                        if entries:
                            yield arrow_page(entries, ENTRY_SCHEMA)
                _mark(state, "newest_payout_at", rows)

    @dlt.resource(name="catalog_variations", primary_key="id", write_disposition="merge")
    def catalog_variations() -> Iterator[pa.Table]:
        with shared as client:
            for body in body_cursor_pages(client, "v2/catalog/list", {"types": "ITEM_VARIATION"}):
                rows = []
                for obj in body.get("objects") or []:
                    data = obj.get("item_variation_data") or {} if isinstance(obj, dict) else {}
                    if not isinstance(obj, dict) or not obj.get("id"):
                        quarantine.add("catalog_variations", obj, "missing id")
                        continue
                    rows.append({**obj, "item_id": data.get("item_id"), "name": data.get("name"),
                                 "sku": data.get("sku"), "price_money": data.get("price_money")})
                if rows:
                    yield arrow_page(rows, VARIATION_SCHEMA)

    @dlt.source(name="square", max_table_nesting=0)
    def square() -> Any:
        return orders, payments, refunds, payouts, payout_entries, catalog_variations

    return square()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"payments": PAYMENT_SCHEMA, "refunds": REFUND_SCHEMA, "orders": ORDER_SCHEMA, "payouts": PAYOUT_SCHEMA,
              "payout_entries": ENTRY_SCHEMA, "catalog_variations": VARIATION_SCHEMA}
