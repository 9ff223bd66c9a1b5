"""The Amazon dlt source: orders (Orders API v2026-01-01, or v0 as a setting), settlement event
groups and their financial events (Finances API v0).

Each resource yields one Arrow table per API page (DESIGN §5).  Records that fail validation go
to the quarantine with the reason; the run goes on.

- `orders` — `searchOrders` with `lastUpdatedAfter` = the last run's largest `lastUpdatedTime`
  minus a 2 h lookback (dlt incremental `lag`), `includedData=BUYER,RECIPIENT,PROCEEDS`, pages of
  100 via `paginationToken` (all other arguments repeated unchanged).  With the setting
  `FINANCE_AMAZON_ORDERS_API=v0` the deprecated `getOrders` (`LastUpdatedAfter`, `NextToken`) is
  used instead, plus one `getOrderItems` per order.  Both land in the same table: the items are
  normalised to one JSON shape (`order_items`) and the order as sent is kept in `raw`.
  First run: everything updated in the last 729 days (Amazon serves two years of orders).
- `financial_event_groups` — listed in windows of at most 180 days (a longer range answers an empty
  list), from the start of the oldest group that was not final on the last run (Open, or its
  transfer not yet Succeeded) less a day; a group changes (totals, status) until it is final.
- `financial_events` — for the same groups, every event of the group, one row per component
  (charge, fee, tax withheld) with a stable id.  Closed groups never change, so each is read
  until it has been seen final once.

Searching is throttled hard by Amazon (searchOrders: one call per ~3 minutes sustained, burst 20),
so a long backfill logs its progress every `PROGRESS_EVERY` pages: pages, records and the cursor
date reached.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Iterator

import dlt
import orjson
import pyarrow as pa

from finance_pipeline.ingest.arrow import JSON, TS, parse_timestamp, rows_to_arrow
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.amazon.client import AmazonApiClient, make_client, marketplace_ids
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import env

log = logging.getLogger("finance_pipeline.amazon")

ORDERS_LOOKBACK_S = 2 * 3600
FIRST_RUN_DAYS = 729
GROUP_WINDOW = timedelta(days=180)
GROUP_RESUME_MARGIN = timedelta(days=1)
VISIBLE_DELAY = timedelta(minutes=2, seconds=5)
PAGE_SIZE = 100
PROGRESS_EVERY = 10
ORDERS_API_SETTING = "FINANCE_AMAZON_ORDERS_API"
V0_STATUS = {"Pending": "PENDING", "PendingAvailability": "PENDING_AVAILABILITY", "Unshipped": "UNSHIPPED",
             "PartiallyShipped": "PARTIALLY_SHIPPED", "Shipped": "SHIPPED", "Canceled": "CANCELLED",
             "Unfulfillable": "UNFULFILLABLE", "InvoiceUnconfirmed": "PENDING"}

ORDER_SCHEMA: dict[str, pa.DataType] = {
    "order_id": pa.string(), "api_version": pa.string(), "marketplace_id": pa.string(),
    "marketplace_name": pa.string(), "created_time": TS, "last_updated_time": TS,
    "fulfillment_status": pa.string(), "fulfilled_by": pa.string(), "currency": pa.string(),
    "buyer_email": pa.string(), "country_code": pa.string(), "state_or_region": pa.string(),
    "order_items": JSON, "raw": JSON,
}
GROUP_SCHEMA: dict[str, pa.DataType] = {
    "group_id": pa.string(), "processing_status": pa.string(), "fund_transfer_status": pa.string(),
    "original_total": pa.string(), "original_currency": pa.string(), "converted_total": pa.string(),
    "converted_currency": pa.string(), "beginning_balance": pa.string(), "fund_transfer_date": TS,
    "started_at": TS, "ended_at": TS, "trace_id": pa.string(), "account_tail": pa.string(),
}
EVENT_SCHEMA: dict[str, pa.DataType] = {
    "component_id": pa.string(), "group_id": pa.string(), "event_type": pa.string(), "posted_date": TS,
    "amazon_order_id": pa.string(), "marketplace_name": pa.string(), "order_item_id": pa.string(),
    "order_adjustment_item_id": pa.string(), "seller_sku": pa.string(), "quantity": pa.int64(),
    "list_name": pa.string(), "component_type": pa.string(), "tax_collection_model": pa.string(),
    "currency": pa.string(), "amount": pa.string(), "fee_reason": pa.string(),
}


# ------------------------------------------------------------------------------------ validation
def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise BadRecord(f"{name}={value!r} is not a decimal amount")
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise BadRecord(f"{name}={value!r} is not a decimal amount") from None


def _time(value: Any, name: str) -> datetime:
    try:
        at = parse_timestamp(value)
    except (TypeError, ValueError):
        at = None
    if at is None:
        raise BadRecord(f"{name}={value!r} is not an ISO 8601 timestamp")
    return at


def _money26(m: Any, name: str) -> tuple[Decimal, str]:
    if not isinstance(m, dict):
        raise BadRecord(f"{name} is not a Money object")
    if not isinstance(m.get("amount"), str):
        raise BadRecord(f"{name}.amount={m.get('amount')!r} is not a decimal string")
    check_currency(m.get("currencyCode"), f"{name}.currencyCode")
    return _decimal(m["amount"], f"{name}.amount"), m["currencyCode"]


def _money_v0(m: Any, name: str) -> tuple[Decimal, str]:
    if not isinstance(m, dict):
        raise BadRecord(f"{name} is not a Money object")
    check_currency(m.get("CurrencyCode"), f"{name}.CurrencyCode")
    return _decimal(m.get("Amount"), f"{name}.Amount"), m["CurrencyCode"]


def _fmt(d: Decimal) -> str:
    return format(d, "f")


def normalise_order_2026(order: dict) -> dict:
    require(order, "orderId", "createdTime", "lastUpdatedTime", "salesChannel")
    created = _time(order["createdTime"], "createdTime")
    updated = _time(order["lastUpdatedTime"], "lastUpdatedTime")
    channel = order["salesChannel"] or {}
    items = []
    currency = None
    for n, it in enumerate(order.get("orderItems") or []):
        require(it, "orderItemId", "quantityOrdered", "product")
        product = it["product"] or {}
        unit, ccy = _money26((product.get("price") or {}).get("unitPrice"), f"orderItems[{n}].product.price.unitPrice")
        tax = Decimal("0.00")
        for b in (it.get("proceeds") or {}).get("breakdowns") or []:
            if b.get("type") == "TAX":
                tax += _money26(b.get("subtotal"), f"orderItems[{n}].proceeds.TAX")[0]
        if currency not in (None, ccy):
            raise BadRecord(f"orderItems[{n}] is in {ccy}, the order in {currency}")
        currency = ccy
        models = [c.get("model") for c in (it.get("tax") or {}).get("taxCollections") or []]
        qty = it["quantityOrdered"]
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 0:
            raise BadRecord(f"orderItems[{n}].quantityOrdered={qty!r} is not a count")
        items.append({"order_item_id": str(it["orderItemId"]), "seller_sku": product.get("sellerSku"),
                      "title": product.get("title"), "quantity": qty, "unit_price": _fmt(unit),
                      "item_price": _fmt(unit * qty), "item_tax": _fmt(tax),
                      "tax_model": "MarketplaceFacilitator" if "MARKETPLACE_FACILITATOR" in models else None})
    if not items:
        raise BadRecord("order has no orderItems")
    address = (order.get("recipient") or {}).get("deliveryAddress") or {}
    fulfillment = order.get("fulfillment") or {}
    return {
        "order_id": order["orderId"], "api_version": "2026-01-01", "marketplace_id": channel.get("marketplaceId"),
        "marketplace_name": channel.get("marketplaceName"), "created_time": created, "last_updated_time": updated,
        "fulfillment_status": fulfillment.get("fulfillmentStatus"), "fulfilled_by": fulfillment.get("fulfilledBy"),
        "currency": currency, "buyer_email": (order.get("buyer") or {}).get("buyerEmail"),
        "country_code": address.get("countryCode"), "state_or_region": address.get("stateOrRegion"),
        "order_items": items, "raw": order,
    }


def normalise_order_v0(order: dict, order_items: list[dict]) -> dict:
    require(order, "AmazonOrderId", "PurchaseDate", "LastUpdateDate", "MarketplaceId", "OrderStatus")
    created = _time(order["PurchaseDate"], "PurchaseDate")
    updated = _time(order["LastUpdateDate"], "LastUpdateDate")
    items = []
    currency = None
    for n, it in enumerate(order_items):
        require(it, "OrderItemId", "QuantityOrdered", "ItemPrice")
        price, ccy = _money_v0(it["ItemPrice"], f"OrderItems[{n}].ItemPrice")
        tax = _money_v0(it["ItemTax"], f"OrderItems[{n}].ItemTax")[0] if it.get("ItemTax") else Decimal("0.00")
        if currency not in (None, ccy):
            raise BadRecord(f"OrderItems[{n}] is in {ccy}, the order in {currency}")
        currency = ccy
        qty = it["QuantityOrdered"]
        if not isinstance(qty, int) or isinstance(qty, bool) or qty <= 0:
            raise BadRecord(f"OrderItems[{n}].QuantityOrdered={qty!r} is not a count")
        items.append({"order_item_id": str(it["OrderItemId"]), "seller_sku": it.get("SellerSKU"),
                      "title": it.get("Title"), "quantity": qty, "unit_price": _fmt(price / qty),
                      "item_price": _fmt(price), "item_tax": _fmt(tax),
                      "tax_model": (it.get("TaxCollection") or {}).get("Model")})
    if not items:
        raise BadRecord("order has no OrderItems")
    address = order.get("ShippingAddress") or {}
    mkt = order["MarketplaceId"]
    return {
        "order_id": order["AmazonOrderId"], "api_version": "v0", "marketplace_id": mkt,
        "marketplace_name": order.get("SalesChannel"), "created_time": created, "last_updated_time": updated,
        "fulfillment_status": V0_STATUS.get(order["OrderStatus"], order["OrderStatus"].upper()),
        "fulfilled_by": {"AFN": "AMAZON", "MFN": "MERCHANT"}.get(order.get("FulfillmentChannel") or ""),
        "currency": currency, "buyer_email": (order.get("BuyerInfo") or {}).get("BuyerEmail"),
        "country_code": address.get("CountryCode"), "state_or_region": address.get("StateOrRegion"),
        "order_items": items, "raw": {**order, "OrderItems": order_items},
    }


def _currency_fin(c: Any, name: str) -> tuple[Decimal, str] | tuple[None, None]:
    if c is None:
        return None, None
    if not isinstance(c, dict):
        raise BadRecord(f"{name} is not a Currency object")
    check_currency(c.get("CurrencyCode"), f"{name}.CurrencyCode")
    return _decimal(c.get("CurrencyAmount"), f"{name}.CurrencyAmount"), c["CurrencyCode"]


def normalise_group(g: dict) -> dict:
    require(g, "FinancialEventGroupId", "ProcessingStatus", "FinancialEventGroupStart", "OriginalTotal")
    original, original_ccy = _currency_fin(g["OriginalTotal"], "OriginalTotal")
    converted, converted_ccy = _currency_fin(g.get("ConvertedTotal"), "ConvertedTotal")
    beginning, _ = _currency_fin(g.get("BeginningBalance"), "BeginningBalance")
    return {
        "group_id": g["FinancialEventGroupId"], "processing_status": g["ProcessingStatus"],
        "fund_transfer_status": g.get("FundTransferStatus"),
        "original_total": _fmt(original), "original_currency": original_ccy,
        "converted_total": _fmt(converted) if converted is not None else None, "converted_currency": converted_ccy,
        "beginning_balance": _fmt(beginning) if beginning is not None else None,
        "fund_transfer_date": _time(g["FundTransferDate"], "FundTransferDate") if g.get("FundTransferDate") else None,
        "started_at": _time(g["FinancialEventGroupStart"], "FinancialEventGroupStart"),
        "ended_at": _time(g["FinancialEventGroupEnd"], "FinancialEventGroupEnd") if g.get("FinancialEventGroupEnd") else None,
        "trace_id": g.get("TraceId"), "account_tail": g.get("AccountTail"),
    }


def group_is_final(row: dict) -> bool:
    return row["processing_status"] == "Closed" and row.get("fund_transfer_status") == "Succeeded"


ITEM_LISTS = {"ShipmentItemList": ("ItemChargeList", "ItemFeeList", "ItemTaxWithheldList"),
              "ShipmentItemAdjustmentList": ("ItemChargeAdjustmentList", "ItemFeeAdjustmentList", "ItemTaxWithheldList")}
ORDER_EVENTS = {"ShipmentEventList": "ShipmentEvent", "RefundEventList": "RefundEvent",
                "ChargebackEventList": "ChargebackEvent", "GuaranteeClaimEventList": "GuaranteeClaimEvent"}


def flatten_event(group_id: str, list_name: str, event: dict, occurrence: int) -> list[dict]:
    """One row per money component of one financial event (validated; raises BadRecord)."""
    rows: list[dict] = []

    def add(base: dict, lst: str, ctype: Any, money: Any, j: int, **extra: Any) -> None:
        amount, ccy = _currency_fin(money, f"{lst}[{j}]")
        if amount is None:
            raise BadRecord(f"{lst}[{j}] has no amount")
        if not isinstance(ctype, str) or not ctype:
            raise BadRecord(f"{lst}[{j}] has no type")
        rows.append({**base, "list_name": lst, "component_type": ctype, "currency": ccy, "amount": _fmt(amount),
                     "component_id": "|".join(str(x) for x in (base["_key"], lst, ctype, j)), **extra})

    if list_name in ORDER_EVENTS:
        kind = ORDER_EVENTS[list_name]
        require(event, "AmazonOrderId", "PostedDate")
        posted = _time(event["PostedDate"], "PostedDate")
        common = {"group_id": group_id, "event_type": kind, "posted_date": posted,
                  "amazon_order_id": event["AmazonOrderId"], "marketplace_name": event.get("MarketplaceName")}
        for item_list, money_lists in ITEM_LISTS.items():
            for item in event.get(item_list) or []:
                item_key = item.get("OrderAdjustmentItemId") or item.get("OrderItemId")
                if not item_key:
                    raise BadRecord(f"{kind} item without OrderItemId")
                base = {**common, "order_item_id": item.get("OrderItemId"),
                        "order_adjustment_item_id": item.get("OrderAdjustmentItemId"),
                        "seller_sku": item.get("SellerSKU"), "quantity": item.get("QuantityShipped"),
                        "_key": f"{kind}|{event['AmazonOrderId']}|{posted.isoformat()}|{item_key}"}
                charge_list, fee_list, withheld_list = money_lists
                for j, c in enumerate(item.get(charge_list) or []):
                    add(base, charge_list, c.get("ChargeType"), c.get("ChargeAmount"), j)
                for j, f in enumerate(item.get(fee_list) or []):
                    add(base, fee_list, f.get("FeeType"), f.get("FeeAmount"), j)
                j = 0
                for block in item.get(withheld_list) or []:
                    for c in block.get("TaxesWithheld") or []:
                        add(base, withheld_list, c.get("ChargeType"), c.get("ChargeAmount"), j,
                            tax_collection_model=block.get("TaxCollectionModel"))
                        j += 1
        return rows
    if list_name == "ServiceFeeEventList":
        # a service fee carries no date and no id: it is named by its group and its place there
        base = {"group_id": group_id, "event_type": "ServiceFeeEvent", "posted_date": None,
                "amazon_order_id": event.get("AmazonOrderId"), "seller_sku": event.get("SellerSKU"),
                "fee_reason": event.get("FeeReason"), "_key": f"ServiceFeeEvent|{group_id}|{occurrence}"}
        for j, f in enumerate(event.get("FeeList") or []):
            add(base, "FeeList", f.get("FeeType"), f.get("FeeAmount"), j)
        return rows
    if list_name == "AdjustmentEventList":
        require(event, "AdjustmentType", "PostedDate")
        posted = _time(event["PostedDate"], "PostedDate")
        base = {"group_id": group_id, "event_type": "AdjustmentEvent", "posted_date": posted,
                "_key": f"AdjustmentEvent|{group_id}|{posted.isoformat()}|{occurrence}"}
        add(base, "AdjustmentEventList", event["AdjustmentType"], event.get("AdjustmentAmount"), 0)
        return rows
    raise BadRecord(f"financial event list {list_name} is not supported yet; the event is kept here unbooked")


def _strip(rows: list[dict]) -> list[dict]:
    for r in rows:
        r.pop("_key", None)
    return rows


# ------------------------------------------------------------------------------------ plumbing


def _table(rows: list[dict], schema: dict[str, pa.DataType], key: str) -> pa.Table:
    table = rows_to_arrow(rows, schema)
    index = table.schema.get_field_index(key)
    return table.cast(table.schema.set(index, table.schema.field(index).with_nullable(False)))


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _valid(records: Iterable[Any], entity: str, check: Callable[[dict], dict], quarantine: Quarantine,
           id_field: str) -> list[dict]:
    good = []
    for record in records:
        try:
            if not isinstance(record, dict):
                raise BadRecord("not a JSON object")
            good.append(check(record))
        except BadRecord as exc:
            quarantine.add(entity, {"id": record.get(id_field) if isinstance(record, dict) else None,
                                    "record": record}, str(exc))
    return good


class Progress:
    """Logs a long listing every `every` pages: pages, records, and how far the cursor has got."""

    def __init__(self, what: str, every: int = PROGRESS_EVERY) -> None:
        self.what, self.every = what, every
        self.pages = self.records = 0

    def page(self, records: int, cursor: datetime | None) -> None:
        self.pages += 1
        self.records += records
        if self.pages % self.every == 0:
            self._say("amazon %s: %d pages, %d records so far, cursor at %s", self.what, self.pages, self.records,
                      cursor.isoformat() if cursor else "-")

    def done(self) -> None:
        self._say("amazon %s: done, %d pages, %d records", self.what, self.pages, self.records)

    @staticmethod
    def _say(msg: str, *args: Any) -> None:
        log.info(msg, *args)
        try:  # inside a Dagster run this lands in the run log; elsewhere it is the console logger
            from dagster import get_dagster_logger

            get_dagster_logger("amazon").info(msg % args)
        except Exception:  # noqa: BLE001 - progress reporting never fails an ingest
            pass


def data_now(connection: Connection | None) -> datetime:
    """The request time as Amazon sees it: now in live mode, the sandbox clock in sandbox mode
    (the emulator answers as of its clock, and refuses windows ending after clock - 2 min)."""
    if connection is not None and connection.settings.mode == "sandbox":
        from finance_pipeline.sandbox.runtime import sandbox_for

        return sandbox_for(connection.settings).clock
    return datetime.now(timezone.utc)


# ------------------------------------------------------------------------------------ the source
def amazon_source(connection: Connection | None = None, quarantine: Quarantine | None = None,
                  orders_api: str | None = None) -> Any:
    """The dlt source.  `orders_api`: '2026-01-01' (default) or 'v0' (deprecated getOrders); unset,
    the setting FINANCE_AMAZON_ORDERS_API decides."""
    quarantine = quarantine if quarantine is not None else Quarantine("amazon")
    shared = SharedClient('amazon', connection, make_client)
    api = (orders_api or env(ORDERS_API_SETTING) or "2026-01-01").strip().lower()
    if api not in ("2026-01-01", "v0"):
        raise ValueError(f"{ORDERS_API_SETTING}={api!r}: use 2026-01-01 (default) or v0")
    now = data_now(connection)
    first_run = now - timedelta(days=FIRST_RUN_DAYS)

    @dlt.resource(name="orders", primary_key="order_id", write_disposition="merge")
    def orders(
        updated: dlt.sources.incremental[datetime] = dlt.sources.incremental(
            "last_updated_time", initial_value=first_run, lag=ORDERS_LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        since = updated.start_value or first_run
        with shared as client:
            mkts = marketplace_ids(client_connection(shared))
            progress = Progress(f"orders ({api})")
            if api == "2026-01-01":
                params = {"lastUpdatedAfter": _iso(since), "marketplaceIds": ",".join(mkts),
                          "maxResultsPerPage": PAGE_SIZE, "includedData": "BUYER,RECIPIENT,PROCEEDS,CANCELLATION"}
                while True:
                    body = client.call("searchOrders", "/orders/2026-01-01/orders", params)
                    rows = _valid(body.get("orders") or [], "orders", normalise_order_2026, quarantine, "orderId")
                    progress.page(len(rows), max((r["last_updated_time"] for r in rows), default=None))
                    if rows:
                        yield _table(rows, ORDER_SCHEMA, "order_id")
                    token = (body.get("pagination") or {}).get("nextToken")
                    if not token:
                        break
                    params = {**params, "paginationToken": token}
            else:
                params = {"LastUpdatedAfter": _iso(since), "MarketplaceIds": ",".join(mkts),
                          "MaxResultsPerPage": PAGE_SIZE}
                while True:
                    payload = client.call("getOrders", "/orders/v0/orders", params).get("payload") or {}
                    rows = []
                    for order in payload.get("Orders") or []:
                        oid = order.get("AmazonOrderId") if isinstance(order, dict) else None
                        items: list[dict] = []
                        if oid:
                            items_params: dict[str, Any] = {}
                            while True:
                                p = client.call("getOrderItems", f"/orders/v0/orders/{oid}/orderItems",
                                                items_params or None).get("payload") or {}
                                items.extend(p.get("OrderItems") or [])
                                if not p.get("NextToken"):
                                    break
                                items_params = {"NextToken": p["NextToken"]}
                        rows.extend(_valid([order], "orders", lambda o, it=items: normalise_order_v0(o, it),
                                           quarantine, "AmazonOrderId"))
                    progress.page(len(rows), max((r["last_updated_time"] for r in rows), default=None))
                    if rows:
                        yield _table(rows, ORDER_SCHEMA, "order_id")
                    token = payload.get("NextToken")
                    if not token:
                        break
                    params = {**params, "NextToken": token}
            progress.done()

    def _groups(client: AmazonApiClient, since: datetime, progress: Progress) -> Iterator[list[dict]]:
        """Pages of normalised groups started at or after `since`, in windows of <= 180 days."""
        start = since
        while True:
            end = start + GROUP_WINDOW
            params: dict[str, Any] = {"FinancialEventGroupStartedAfter": _iso(start), "MaxResultsPerPage": PAGE_SIZE}
            last_window = end >= now - VISIBLE_DELAY
            if not last_window:
                params["FinancialEventGroupStartedBefore"] = _iso(end)
            while True:
                payload = client.call("listFinancialEventGroups", "/finances/v0/financialEventGroups",
                                      params).get("payload") or {}
                rows = _valid(payload.get("FinancialEventGroupList") or [], "financial_event_groups",
                              normalise_group, quarantine, "FinancialEventGroupId")
                progress.page(len(rows), max((r["started_at"] for r in rows), default=start))
                yield rows
                token = payload.get("NextToken")
                if not token:
                    break
                params = {**params, "NextToken": token}
            if last_window:
                return
            start = end

    def _resume(state: dict) -> datetime:
        mark = state.get("resume_started_at")
        return parse_timestamp(mark) - GROUP_RESUME_MARGIN if mark else first_run

    def _remember(state: dict, seen: list[dict]) -> None:
        pending = [g["started_at"] for g in seen if not group_is_final(g)]
        mark = min(pending) if pending else max((g["started_at"] for g in seen), default=None)
        if mark is not None:
            state["resume_started_at"] = mark.isoformat()

    @dlt.resource(name="financial_event_groups", primary_key="group_id", write_disposition="merge")
    def financial_event_groups() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        seen: list[dict] = []
        with shared as client:
            progress = Progress("financial event groups")
            for rows in _groups(client, _resume(state), progress):
                seen.extend(rows)
                if rows:
                    yield _table(rows, GROUP_SCHEMA, "group_id")
            progress.done()
        _remember(state, seen)

    @dlt.resource(name="financial_events", primary_key="component_id", write_disposition="merge")
    def financial_events() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        seen: list[dict] = []
        with shared as client:
            group_progress = Progress("financial event groups (for events)")
            groups: dict[str, dict] = {}
            for rows in _groups(client, _resume(state), group_progress):
                for g in rows:
                    groups[g["group_id"]] = g
            progress = Progress("financial events")
            for g in sorted(groups.values(), key=lambda g: g["started_at"]):
                occurrences: dict[str, int] = {}
                previous: list[tuple[str, bytes]] = []
                params: dict[str, Any] = {"MaxResultsPerPage": PAGE_SIZE}
                path = f"/finances/v0/financialEventGroups/{g['group_id']}/financialEvents"
                while True:
                    payload = client.call("listFinancialEventsByGroupId", path, params).get("payload") or {}
                    events = [(name, e) for name, lst in (payload.get("FinancialEvents") or {}).items()
                              for e in (lst or [])]
                    page = [(name, orjson.dumps(e, option=orjson.OPT_SORT_KEYS)) for name, e in events]
                    # a page served again in part (seen after a retry): drop what the last page ended with
                    overlap = next((k for k in range(min(len(page), len(previous)), 0, -1)
                                    if page[:k] == previous[-k:]), 0)
                    rows: list[dict] = []
                    for (name, event), _ in list(zip(events, page))[overlap:]:
                        n = occurrences.get(name, 0)
                        occurrences[name] = n + 1
                        try:
                            if not isinstance(event, dict):
                                raise BadRecord("not a JSON object")
                            rows.extend(_strip(flatten_event(g["group_id"], name, event, n)))
                        except BadRecord as exc:
                            quarantine.add("financial_events", {"id": f"{g['group_id']}/{name}/{n}", "event": event},
                                           str(exc))
                    previous = page
                    progress.page(len(rows), g["started_at"])
                    if rows:
                        yield _table(rows, EVENT_SCHEMA, "component_id")
                    token = payload.get("NextToken")
                    if not token:
                        break
                    params = {**params, "NextToken": token}
            progress.done()
            seen = list(groups.values())
        _remember(state, seen)

    def client_connection(s: SharedClient) -> Connection:
        assert s.connection is not None
        return s.connection

    @dlt.source(name="amazon", max_table_nesting=0)
    def amazon() -> Any:
        return orders, financial_event_groups, financial_events

    return amazon()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"orders": ORDER_SCHEMA, "financial_event_groups": GROUP_SCHEMA, "financial_events": EVENT_SCHEMA}
