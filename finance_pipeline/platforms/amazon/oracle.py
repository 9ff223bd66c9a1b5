"""Amazon's truth in the canonical shape (sandbox/oracle.py `Canonical`), from the world tables.

Computed in Python `Decimal` straight from the world, never from payloads or the warehouse.
Amazon shows the world as of two minutes before the clock (`VISIBLE_DELAY_S`), so does this.

Accounting rules for the channel (docs/decisions.md, "Amazon"):
- Sales: Amazon.co.uk prices include VAT (tax-inclusive lines, the business owes the VAT);
  Amazon.com prices exclude sales tax, which Amazon collects and remits as marketplace
  facilitator.  Line tax is all tax the buyer paid either way.
- Home currency: GBP marketplaces are home.  Amazon.com money converts at Amazon's own settlement
  conversion: ConvertedTotal / OriginalTotal of the latest *closed* event group of the
  marketplace that started at or before the moment converted (so the group covering the moment
  once it has closed, the previous closed one until then), rounded to the cent per amount.
- A cancelled order (always before shipment: FBA ships within hours) is void.
- Refunds: goods (Principal) and tax given back; no COGS reversal (whether a returned unit is
  resellable is in FBA's returns report, not in the Finances API).
- Settlements: one payout per closed event group, `amount` = OriginalTotal in the marketplace
  currency, `paid` once the transfer succeeded; every financial event component is a balance
  transaction (fees with amount 0 and a positive fee).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.platforms.amazon import VISIBLE_DELAY_S
from finance_pipeline.sandbox.oracle import Canonical

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
FEE_LISTS = frozenset({"ItemFeeList", "ItemFeeAdjustmentList", "FeeList", "ShipmentFeeList", "OrderFeeList"})
EVENT_TYPE = {"ShipmentEvent": "charge", "RefundEvent": "refund", "ServiceFeeEvent": "fee"}


def _q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def _rows(con, sql: str, params=()) -> list[dict]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def component_money(list_name: str, amount: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(amount, fee, net) of one financial event component as a balance transaction."""
    if list_name in FEE_LISTS:
        return ZERO, -amount, amount
    return amount, ZERO, amount


def settlements(con, visible: datetime) -> tuple[list[dict], dict[str, Decimal]]:
    """Event groups as Amazon shows them at `visible`, with OriginalTotal / ConvertedTotal."""
    groups = _rows(con, "select * from amazon_event_groups where start_at <= ? order by marketplace, start_at",
                   [visible])
    totals = {r["group_id"]: r["total"] for r in _rows(
        con, "select group_id, sum(amount) as total from amazon_event_lines where posted_at <= ? group by group_id",
        [visible])}
    for g in groups:
        g["original_total"] = _q(totals.get(g["group_id"], ZERO))
        g["closed"] = g["end_at"] <= visible
        g["converted_total"] = _q(g["original_total"] * g["conversion_rate"]) if g["closed"] else None
    return groups, totals


class HomeRates:
    """Amazon's conversion of marketplace money to GBP as of a moment (see the module docstring)."""

    def __init__(self, groups: list[dict]) -> None:
        self.by_mkt: dict[str, list[dict]] = defaultdict(list)
        for g in groups:
            if g["closed"] and g["original_total"] != 0:
                self.by_mkt[g["marketplace"]].append(g)

    def home(self, marketplace: str, currency: str, amount: Decimal, at: datetime) -> Decimal:
        if currency == "GBP":
            return amount
        best = None
        for g in self.by_mkt[marketplace]:
            if g["start_at"] <= at:
                best = g
        if best is None:
            raise ValueError(f"no closed Amazon settlement converts {marketplace} money of {at}")
        return _q(amount * best["converted_total"] / best["original_total"])


def expected(con, clock: datetime) -> Canonical:
    visible = clock - timedelta(seconds=VISIBLE_DELAY_S)
    c = Canonical("amazon")
    groups, _ = settlements(con, visible)
    rates = HomeRates(groups)
    orders = _rows(con, "select * from amazon_orders where purchase_at <= ?", [visible])
    by_id = {o["order_id"]: o for o in orders}
    for o in orders:
        c.orders.append({
            "order_id": o["order_id"], "customer_type": "retail", "currency": o["currency"],
            "ordered_at": o["purchase_at"],
            "is_void": o["cancelled_at"] is not None and o["cancelled_at"] <= visible,
            "shipping_amount": ZERO, "shipping_tax": ZERO, "shipping_amount_home": ZERO, "shipping_tax_home": ZERO,
        })
    for item in _rows(con, "select i.* from amazon_order_items i join amazon_orders o using (order_id) "
                           "where o.purchase_at <= ?", [visible]):
        o = by_id[item["order_id"]]
        mkt, ccy, at = o["marketplace"], o["currency"], o["purchase_at"]
        price, tax = item["item_price"], item["item_tax"]
        price_h, tax_h = rates.home(mkt, ccy, price, at), rates.home(mkt, ccy, tax, at)
        if o["taxes_included"]:
            gross, gross_h = _q(price / (1 + item["tax_rate"])), _q(price_h / (1 + item["tax_rate"]))
            net, net_h = price - tax, price_h - tax_h
        else:
            gross = net = price
            gross_h = net_h = price_h
        c.lines.append({
            "order_id": o["order_id"], "line_id": item["order_item_id"], "quantity": item["quantity"],
            "gross_amount": gross, "net_amount": net, "tax_amount": tax,
            "gross_amount_home": gross_h, "net_amount_home": net_h, "tax_amount_home": tax_h,
            "cogs_home": _q(item["unit_cost_gbp"] * item["quantity"]),
        })
    for r in _rows(con, "select r.*, o.marketplace from amazon_refunds r join amazon_orders o using (order_id) "
                        "where r.posted_at <= ?", [visible]):
        mkt, ccy, at = r["marketplace"], r["currency"], r["posted_at"]
        c.refunds.append({
            "refund_id": r["refund_id"], "order_id": r["order_id"], "refunded_at": at,
            "goods_amount": r["principal"], "shipping_amount": ZERO, "tax_amount": r["tax"],
            "goods_amount_home": rates.home(mkt, ccy, r["principal"], at), "shipping_amount_home": ZERO,
            "tax_amount_home": rates.home(mkt, ccy, r["tax"], at), "cogs_reversal_home": ZERO,
        })
    closed = {g["group_id"]: g for g in groups if g["closed"]}
    group_by_id = {g["group_id"]: g for g in groups}
    for line in _rows(con, "select * from amazon_event_lines where posted_at <= ?", [visible]):
        amount, fee, net = component_money(line["list_name"], line["amount"])
        if line["group_id"] in closed:
            c.payout_transactions.append({"payout_id": line["group_id"], "type": EVENT_TYPE[line["event_type"]],
                                          "amount": amount, "fee": fee, "net": net})
        if fee:
            # Amazon gives service fees no date: they are booked when their settlement period starts
            at = group_by_id[line["group_id"]]["start_at"] if line["event_type"] == "ServiceFeeEvent" \
                else line["posted_at"]
            c.fees.append({"at": at, "fee_home": rates.home(line["marketplace"], line["currency"], fee, at)})
    for g in closed.values():
        c.payouts.append({"payout_id": g["group_id"], "amount": g["original_total"], "amount_home": g["converted_total"],
                          "status": "paid" if g["transfer_at"] <= visible else "in_transit",
                          "payout_date": g["transfer_at"].date()})
    return c
