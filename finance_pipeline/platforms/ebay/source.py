"""The eBay dlt source: orders (Fulfillment), transactions and payouts (Finances).

One Arrow table per page; scalar fields as typed columns (snake_case), nested objects (pricing,
payment summary, line items with their taxes and refunds, buyer) as JSON text that the dbt
staging models unnest; money as eBay's `{value, currency}` objects kept verbatim.  Records
that fail validation go to the quarantine with the reason; the run goes on.

How each resource stays current
-------------------------------
Every run first asks eBay what time it is (the `Date` header of a one-row request): the
filters only reach so far back from *eBay's* now.

- `orders` — `filter=lastmodifieddate:[cursor - 2 h..]`: refunds, cancellations and fulfilment
  move `lastModifiedDate`, so late refunds arrive; the lookback absorbs late indexing and the
  merge on `order_id` the overlap.  getOrders filters reach only 90 days back, so on the first
  run (or when the last successful run is older than that) the orders before the reachable
  window are found through the Finances ledger (5 years of history): the order ids of SALE and
  REFUND transactions of that period, fetched with `orderIds` 50 at a time.
- `transactions` — `filter=transactionDate:[from..now]` in ranges of at most 36 months.  A
  transaction is listed before it is paid out and gains its `payoutId` later, so the next run
  starts at the oldest transaction that had no payout yet (minus a lookback), not at the newest
  seen.  Primary key (`transaction_id`, `transaction_type`): a refund may share an id with its sale.
- `payouts` — `filter=payoutDate:[cursor - 5 days..now]` (INITIATED -> SUCCEEDED within days).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.http.client import ApiClient
from finance_pipeline.http.pagination import next_url_pages
from finance_pipeline.ingest.arrow import JSON, TS, arrow_page, parse_timestamp
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.ebay.client import EbayClients, make_clients, server_now

log = logging.getLogger("finance_pipeline.ebay")

ORDERS_PATH = "/sell/fulfillment/v1/order"
TRANSACTIONS_PATH = "/sell/finances/v1/transaction"
PAYOUTS_PATH = "/sell/finances/v1/payout"
ORDER_PAGE, TXN_PAGE, PAYOUT_PAGE = 200, 1000, 200
ORDER_IDS_PER_CALL = 50
ORDERS_LOOKBACK_S = 2 * 3600
ORDER_FILTER_REACH = timedelta(days=89)  # eBay: 90 days; a day's margin for clocks and slow runs
FINANCES_HISTORY = timedelta(days=5 * 365)
FINANCES_RANGE = timedelta(days=3 * 365 - 1)  # one transactionDate range: at most 36 months
TXN_LOOKBACK = timedelta(hours=2)
PAYOUTS_LOOKBACK_DAYS = 5

ORDER_SCHEMA: dict[str, pa.DataType] = {
    "order_id": pa.string(), "legacy_order_id": pa.string(), "creation_date": TS, "last_modified_date": TS,
    "order_fulfillment_status": pa.string(), "order_payment_status": pa.string(), "seller_id": pa.string(),
    "marketplace_id": pa.string(), "cancel_state": pa.string(), "buyer": JSON, "pricing_summary": JSON,
    "cancel_status": JSON, "payment_summary": JSON, "fulfillment_start_instructions": JSON, "line_items": JSON,
    "total_fee_basis_amount": JSON, "total_marketplace_fee": JSON, "sales_record_reference": pa.string(),
}
TXN_SCHEMA: dict[str, pa.DataType] = {
    "transaction_id": pa.string(), "transaction_type": pa.string(), "transaction_status": pa.string(),
    "transaction_date": TS, "booking_entry": pa.string(), "amount": JSON, "total_fee_amount": JSON,
    "total_fee_basis_amount": JSON, "order_id": pa.string(), "payout_id": pa.string(), "fee_type": pa.string(),
    "transaction_memo": pa.string(), "order_line_items": JSON, "references": JSON,
}
PAYOUT_SCHEMA: dict[str, pa.DataType] = {
    "payout_id": pa.string(), "payout_status": pa.string(), "payout_status_description": pa.string(),
    "payout_date": TS, "last_attempted_payout_date": TS, "amount": JSON, "transaction_count": pa.int64(),
    "payout_instrument": JSON, "bank_reference": pa.string(),
}


def ebay_time(at: datetime) -> str:
    at = at.astimezone(timezone.utc)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


# ------------------------------------------------------------------------------------ validation
def _check_amount(record: dict, *names: str) -> None:
    for name in names:
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise BadRecord(f"{name}={value!r} is not an eBay Amount")
        check_currency(value.get("currency"), f"{name}.currency")
        for key in ("value", "convertedFromValue"):
            if key in value:
                try:
                    Decimal(str(value[key]))
                except (InvalidOperation, ValueError):
                    raise BadRecord(f"{name}.{key}={value[key]!r} is not a decimal amount") from None
        if "convertedFromCurrency" in value:
            check_currency(value["convertedFromCurrency"], f"{name}.convertedFromCurrency")


def _check_times(record: dict, *names: str) -> None:
    for name in names:
        value = record.get(name)
        if value is None:
            continue
        try:
            parse_timestamp(value)
        except (TypeError, ValueError):
            raise BadRecord(f"{name}={value!r} is not an ISO 8601 timestamp") from None


def validate_order(o: dict) -> None:
    require(o, "orderId", "creationDate", "lastModifiedDate", "pricingSummary", "lineItems")
    _check_times(o, "creationDate", "lastModifiedDate")
    _check_amount(o["pricingSummary"], "priceSubtotal", "priceDiscount", "deliveryCost", "tax", "total")
    _check_amount(o, "totalFeeBasisAmount", "totalMarketplaceFee")
    for line in o["lineItems"]:
        require(line, "lineItemId", "quantity", "lineItemCost")
        _check_amount(line, "lineItemCost", "total")
        for tax in line.get("ebayCollectAndRemitTaxes") or ():
            _check_amount(tax, "amount")
        for refund in line.get("refunds") or ():
            _check_amount(refund, "amount")
    for refund in (o.get("paymentSummary") or {}).get("refunds") or ():
        require(refund, "refundId", "refundDate", "amount")
        _check_amount(refund, "amount")


def validate_transaction(t: dict) -> None:
    require(t, "transactionId", "transactionType", "transactionDate", "amount", "bookingEntry")
    if t["bookingEntry"] not in ("CREDIT", "DEBIT"):
        raise BadRecord(f"bookingEntry={t['bookingEntry']!r} is neither CREDIT nor DEBIT")
    _check_times(t, "transactionDate")
    _check_amount(t, "amount", "totalFeeAmount", "totalFeeBasisAmount")


def validate_payout(p: dict) -> None:
    require(p, "payoutId", "payoutStatus", "payoutDate", "amount")
    _check_times(p, "payoutDate", "lastAttemptedPayoutDate")
    _check_amount(p, "amount")


KEY_OF = {"orders": "orderId", "transactions": "transactionId", "payouts": "payoutId"}


def _order_row(o: dict) -> dict:
    lines = o.get("lineItems") or []
    cancel = o.get("cancelStatus") or {}
    return {
        "order_id": o["orderId"], "legacy_order_id": o.get("legacyOrderId"), "creation_date": o["creationDate"],
        "last_modified_date": o["lastModifiedDate"], "order_fulfillment_status": o.get("orderFulfillmentStatus"),
        "order_payment_status": o.get("orderPaymentStatus"), "seller_id": o.get("sellerId"),
        "marketplace_id": lines[0].get("purchaseMarketplaceId") if lines else None,
        "cancel_state": cancel.get("cancelState"), "buyer": o.get("buyer"), "pricing_summary": o.get("pricingSummary"),
        "cancel_status": cancel, "payment_summary": o.get("paymentSummary"),
        "fulfillment_start_instructions": o.get("fulfillmentStartInstructions"), "line_items": lines,
        "total_fee_basis_amount": o.get("totalFeeBasisAmount"), "total_marketplace_fee": o.get("totalMarketplaceFee"),
        "sales_record_reference": o.get("salesRecordReference"),
    }


def _txn_row(t: dict) -> dict:
    return {
        "transaction_id": t["transactionId"], "transaction_type": t["transactionType"],
        "transaction_status": t.get("transactionStatus"), "transaction_date": t["transactionDate"],
        "booking_entry": t["bookingEntry"], "amount": t["amount"], "total_fee_amount": t.get("totalFeeAmount"),
        "total_fee_basis_amount": t.get("totalFeeBasisAmount"), "order_id": t.get("orderId"),
        "payout_id": t.get("payoutId"), "fee_type": t.get("feeType"), "transaction_memo": t.get("transactionMemo"),
        "order_line_items": t.get("orderLineItems"), "references": t.get("references"),
    }


def _payout_row(p: dict) -> dict:
    return {
        "payout_id": p["payoutId"], "payout_status": p["payoutStatus"],
        "payout_status_description": p.get("payoutStatusDescription"), "payout_date": p["payoutDate"],
        "last_attempted_payout_date": p.get("lastAttemptedPayoutDate"), "amount": p["amount"],
        "transaction_count": p.get("transactionCount"), "payout_instrument": p.get("payoutInstrument"),
        "bank_reference": p.get("bankReference"),
    }


# ------------------------------------------------------------------------------------ plumbing
class _Run(SharedClient[EbayClients]):
    """The clients (one auth, two hosts) shared by the resources of one source instance, and
    eBay's "now" learnt once per run."""

    def __init__(self, connection: Connection | None) -> None:
        super().__init__("ebay", connection, make_clients)
        self._now: datetime | None = None

    def now(self, clients: EbayClients) -> datetime:
        if self._now is None:
            resp = clients.finances.get(PAYOUTS_PATH, params={"limit": 1})
            self._now = server_now(resp) or datetime.now(timezone.utc)
        return self._now


def _ranges(since: datetime, until: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[since, until] cut into Finances date ranges of at most 36 months."""
    start = since
    while start <= until:
        end = min(until, start + FINANCES_RANGE)
        yield start, end
        start = end + timedelta(milliseconds=1)


def _transaction_pages(client: ApiClient, since: datetime, until: datetime, extra: str = "") -> Iterator[dict]:
    """Every transaction of [since, until]."""
    for start, end in _ranges(since, until):
        flt = f"transactionDate:[{ebay_time(start)}..{ebay_time(end)}]" + extra
        yield from next_url_pages(client, TRANSACTIONS_PATH, {"filter": flt, "limit": TXN_PAGE,
                                                               "sort": "transactionDate"})


# ------------------------------------------------------------------------------------ the source
def ebay_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("ebay")
    run = _Run(connection)

    @dlt.resource(name="orders", primary_key="order_id", write_disposition="merge")
    def orders(
        modified: dlt.sources.incremental[datetime] = dlt.sources.incremental(
            "last_modified_date", lag=ORDERS_LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        with run as clients:
            now = run.now(clients)
            reach = now - ORDER_FILTER_REACH
            since = parse_timestamp(modified.start_value) if modified.start_value is not None else None
            if since is None or since < reach:
                # before getOrders' reach: the order ids from the ledger, then the orders by id
                back_from = since or now - FINANCES_HISTORY
                ids: list[str] = []
                seen: set[str] = set()
                for body in _transaction_pages(clients.finances, back_from, reach + timedelta(days=1),
                                               ",transactionType:{SALE|REFUND}"):
                    for t in body.get("transactions") or ():
                        oid = t.get("orderId") if isinstance(t, dict) else None
                        if oid and oid not in seen:
                            seen.add(oid)
                            ids.append(oid)
                log.info("ebay: %d orders before the 90-day filter window, fetched by id", len(ids))
                for i in range(0, len(ids), ORDER_IDS_PER_CALL):
                    body = clients.fulfillment.get_json(ORDERS_PATH, params={
                        "orderIds": ",".join(ids[i:i + ORDER_IDS_PER_CALL])})
                    rows = quarantine.keep("orders", body.get("orders") or [], validate_order, key=KEY_OF["orders"])
                    if rows:
                        yield arrow_page([_order_row(o) for o in rows], ORDER_SCHEMA, ("order_id",))
                since = reach
            flt = f"lastmodifieddate:[{ebay_time(since)}..]"
            for body in next_url_pages(clients.fulfillment, ORDERS_PATH, {"filter": flt, "limit": ORDER_PAGE}):
                rows = quarantine.keep("orders", body.get("orders") or [], validate_order, key=KEY_OF["orders"])
                if rows:
                    yield arrow_page([_order_row(o) for o in rows], ORDER_SCHEMA, ("order_id",))

    @dlt.resource(name="transactions", primary_key=("transaction_id", "transaction_type"), write_disposition="merge")
    def transactions() -> Iterator[pa.Table]:
        state = dlt.current.resource_state()
        with run as clients:
            now = run.now(clients)
            resume = state.get("resume_at")
            since = parse_timestamp(resume) - TXN_LOOKBACK if resume else now - FINANCES_HISTORY
            newest: datetime | None = None
            oldest_unpaid: datetime | None = None
            for body in _transaction_pages(clients.finances, since, now):
                rows = quarantine.keep("transactions", body.get("transactions") or [], validate_transaction,
                                       key=KEY_OF["transactions"])
                for t in rows:
                    at = parse_timestamp(t["transactionDate"])
                    newest = at if newest is None or at > newest else newest
                    if not t.get("payoutId"):
                        oldest_unpaid = at if oldest_unpaid is None or at < oldest_unpaid else oldest_unpaid
                if rows:
                    yield arrow_page([_txn_row(t) for t in rows], TXN_SCHEMA, ("transaction_id", "transaction_type"))
        mark = oldest_unpaid or newest
        if mark is not None:
            state["resume_at"] = mark.isoformat()

    @dlt.resource(name="payouts", primary_key="payout_id", write_disposition="merge")
    def payouts(
        payout_date: dlt.sources.incremental[datetime] = dlt.sources.incremental(
            "payout_date", lag=PAYOUTS_LOOKBACK_DAYS * 86400),
    ) -> Iterator[pa.Table]:
        with run as clients:
            now = run.now(clients)
            start = parse_timestamp(payout_date.start_value) if payout_date.start_value is not None \
                else now - FINANCES_HISTORY
            for lo, hi in _ranges(start, now):
                flt = f"payoutDate:[{ebay_time(lo)}..{ebay_time(hi)}]"
                for body in next_url_pages(clients.finances, PAYOUTS_PATH, {"filter": flt, "limit": PAYOUT_PAGE,
                                                                             "sort": "payoutDate"}):
                    rows = quarantine.keep("payouts", body.get("payouts") or [], validate_payout, key=KEY_OF["payouts"])
                    if rows:
                        yield arrow_page([_payout_row(p) for p in rows], PAYOUT_SCHEMA, ("payout_id",))

    @dlt.source(name="ebay", max_table_nesting=0)
    def ebay() -> Any:
        return orders, transactions, payouts

    return ebay()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"orders": ORDER_SCHEMA, "transactions": TXN_SCHEMA, "payouts": PAYOUT_SCHEMA}
