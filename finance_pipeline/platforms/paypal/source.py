"""The PayPal dlt source: Transaction Search rows (the account's ledger) and Checkout orders.

- `transactions` — `GET /v1/reporting/transactions?fields=all` in windows of at most 31 days,
  pages of 500.  PayPal reports with a delay of up to 3 hours and says in
  `last_refreshed_datetime` up to when its data is complete; the next run starts an hour before
  that mark, so rows that appeared late are read, and the merge on (`transaction_id`,
  `transaction_event_code`) absorbs the overlap.  The first run reaches back 3 years (what the
  API keeps).
- `orders` — Orders v2 has no list: the same windows name the orders that changed (a T0006
  capture names its order; a T1107 refund names its capture, whose `related_ids` name the order),
  each fetched with `GET /v2/checkout/orders/{id}`, merged on `id`.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.http.client import ApiClient, ApiError
from finance_pipeline.ingest.arrow import JSON, TS, arrow_page, parse_timestamp
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.paypal.client import make_client

log = logging.getLogger("finance_pipeline.paypal")

SEARCH = "/v1/reporting/transactions"
WINDOW = timedelta(days=31)
HISTORY = timedelta(days=3 * 365)
LOOKBACK = timedelta(hours=1)
PAGE_SIZE = 500

TXN_SCHEMA: dict[str, pa.DataType] = {
    "transaction_id": pa.string(), "transaction_event_code": pa.string(), "transaction_status": pa.string(),
    "transaction_initiation_date": TS, "transaction_updated_date": TS, "transaction_amount": JSON,
    "fee_amount": JSON, "invoice_id": pa.string(), "custom_field": pa.string(), "paypal_reference_id": pa.string(),
    "paypal_reference_id_type": pa.string(), "transaction_subject": pa.string(), "payer_info": JSON,
}
ORDER_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "intent": pa.string(), "status": pa.string(), "create_time": TS, "update_time": TS,
    "payer": JSON, "purchase_units": JSON,
}


def pp_time(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: Any) -> datetime:
    """PayPal writes offsets with or without a colon ('+0000')."""
    text = str(value)
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    return parse_timestamp(text)


def _check_money(obj: Any, name: str) -> None:
    if obj is None:
        return
    if not isinstance(obj, dict):
        raise BadRecord(f"{name}={obj!r} is not a money object")
    check_currency(obj.get("currency_code"), f"{name}.currency_code")
    try:
        Decimal(str(obj.get("value")))
    except (InvalidOperation, ValueError):
        raise BadRecord(f"{name}.value={obj.get('value')!r} is not a decimal amount") from None


def validate_transaction(d: dict) -> None:
    info = d.get("transaction_info")
    if not isinstance(info, dict):
        raise BadRecord("missing transaction_info")
    require(info, "transaction_id", "transaction_event_code", "transaction_initiation_date", "transaction_amount")
    try:
        _parse(info["transaction_initiation_date"])
    except (TypeError, ValueError):
        raise BadRecord(f"transaction_initiation_date={info['transaction_initiation_date']!r} is not RFC 3339") from None
    _check_money(info["transaction_amount"], "transaction_amount")
    _check_money(info.get("fee_amount"), "fee_amount")


def validate_order(o: dict) -> None:
    require(o, "id", "status", "purchase_units")
    for unit in o["purchase_units"]:
        _check_money(unit.get("amount"), "amount")
        for item in unit.get("items") or ():
            _check_money(item.get("unit_amount"), "items.unit_amount")
            _check_money(item.get("tax"), "items.tax")


def _txn_row(d: dict) -> dict:
    info = d["transaction_info"]
    return {
        "transaction_id": info["transaction_id"], "transaction_event_code": info["transaction_event_code"],
        "transaction_status": info.get("transaction_status"),
        "transaction_initiation_date": _parse(info["transaction_initiation_date"]),
        "transaction_updated_date": _parse(info["transaction_updated_date"]) if info.get("transaction_updated_date") else None,
        "transaction_amount": info["transaction_amount"], "fee_amount": info.get("fee_amount"),
        "invoice_id": info.get("invoice_id"), "custom_field": info.get("custom_field"),
        "paypal_reference_id": info.get("paypal_reference_id"),
        "paypal_reference_id_type": info.get("paypal_reference_id_type"),
        "transaction_subject": info.get("transaction_subject"), "payer_info": d.get("payer_info"),
    }


def search(client: ApiClient, since: datetime, until: datetime, quarantine: Quarantine,
           **filters: str) -> Iterator[tuple[list[dict], datetime | None]]:
    """(valid rows of a page, last_refreshed_datetime) for every page of every <= 31-day window."""
    start = since
    while start < until:
        end = min(until, start + WINDOW)
        page = 1
        while True:
            body = client.get_json(SEARCH, params={"start_date": pp_time(start), "end_date": pp_time(end),
                                                   "fields": "all", "page_size": PAGE_SIZE, "page": page, **filters})
            rows = []
            for d in body.get("transaction_details") or ():
                try:
                    if not isinstance(d, dict):
                        raise BadRecord("not a JSON object")
                    validate_transaction(d)
                except BadRecord as exc:
                    info = d.get("transaction_info") if isinstance(d, dict) else None
                    quarantine.add("transactions", d, str(exc),
                                   record_id=info.get("transaction_id") if isinstance(info, dict) else None)
                    continue
                rows.append(d)
            refreshed = body.get("last_refreshed_datetime")
            yield rows, _parse(refreshed) if refreshed else None
            if page >= int(body.get("total_pages") or 1):
                break
            page += 1
        start = end


def paypal_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("paypal")
    run = SharedClient("paypal", connection, make_client)  # one client, so one token, for the whole run

    def window(state: dict, client: ApiClient) -> tuple[datetime, datetime]:
        now = client.paypal_auth.now()  # type: ignore[attr-defined]
        mark = state.get("refreshed_through")
        return (parse_timestamp(mark) - LOOKBACK if mark else now - HISTORY), now

    @dlt.resource(name="transactions", primary_key=("transaction_id", "transaction_event_code"), write_disposition="merge")
    def transactions() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        with run as client:
            since, until = window(state, client)
            refreshed = None
            for rows, mark in search(client, since, until, quarantine):
                refreshed = mark or refreshed
                if rows:
                    yield arrow_page([_txn_row(d) for d in rows], TXN_SCHEMA,
                                     ("transaction_id", "transaction_event_code"))
        if refreshed is not None:
            state["refreshed_through"] = refreshed.isoformat()

    @dlt.resource(name="orders", primary_key="id", write_disposition="merge")
    def orders() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        with run as client:
            since, until = window(state, client)
            refreshed = None
            order_ids: list[str] = []
            for rows, mark in search(client, since, until, quarantine):
                refreshed = mark or refreshed
                for d in rows:
                    info = d["transaction_info"]
                    code, ref = info["transaction_event_code"], info.get("paypal_reference_id")
                    if code == "T0006" and info.get("paypal_reference_id_type") == "ODR" and ref:
                        order_ids.append(ref)
                    elif code == "T1107" and ref:  # a refund names its capture; the capture names its order
                        capture = client.get_json(f"/v2/payments/captures/{ref}")
                        oid = ((capture.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id")
                        if oid:
                            order_ids.append(oid)
            batch: list[dict] = []
            for oid in dict.fromkeys(order_ids):
                try:
                    order = client.get_json(f"/v2/checkout/orders/{oid}")
                except ApiError as exc:
                    if exc.status == 404:
                        quarantine.add("orders", {"id": oid}, "order named by Transaction Search not found", record_id=oid)
                        continue
                    raise
                try:
                    validate_order(order)
                except BadRecord as exc:
                    quarantine.add("orders", order, str(exc), record_id=order.get("id"))
                    continue
                batch.append({k: order.get(k) for k in ORDER_SCHEMA})
                if len(batch) == 100:
                    yield arrow_page(batch, ORDER_SCHEMA, ("id",))
                    batch = []
            if batch:
                yield arrow_page(batch, ORDER_SCHEMA, ("id",))
        if refreshed is not None:
            state["refreshed_through"] = refreshed.isoformat()

    @dlt.source(name="paypal", max_table_nesting=0)
    def paypal() -> Any:
        return transactions, orders

    return paypal()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"transactions": TXN_SCHEMA, "orders": ORDER_SCHEMA}
