"""The business's eBay shop in the sandbox world: eBay UK (GBP) and eBay US (USD) retail buyers.

Truth tables (all named `ebay_*`), generated only from the `ChannelWorld` API and this channel's
own random streams, so the core world and other channels do not change when this one is added:

- `ebay_orders`, `ebay_order_lines`: what the buyer bought and paid.  eBay UK listings are
  VAT-inclusive and the business owes the UK VAT; eBay US listings are ex tax and eBay collects
  and remits the state sales tax (marketplace facilitator), so that tax is the buyer's but not the
  business's (`marketplace_tax*`).  US amounts also carry their GBP value as eBay converts them
  for a UK seller (`*_home`: each amount converted on its own at the day's rate).
- `ebay_refunds`, `ebay_refund_lines`: cancellations (everything back), partial refunds of one
  line and late refunds months later (older than getOrders' 90-day filter reach).
- `ebay_transactions`: the Finances ledger in the seller's GBP funds: SALE (net of the final
  value fee), REFUND (the seller's part; eBay refunds its own collected tax) and NON_SALE_CHARGE
  (the monthly shop subscription), each with the payout that carried it.
- `ebay_payouts`: one payout a day of everything that became available, carried over while the
  balance is not positive.

Money is `Decimal` major units (eBay speaks decimal strings).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from finance_pipeline.sandbox import catalogue as cat

UTC = timezone.utc
D = Decimal
ZERO = D("0.00")
SHARE = 0.06  # of the core Shopify volume

UK_VAT = cat.VAT_RATES["GB"]
FVF_PCT = {"GBP": D("0.1290"), "USD": D("0.1325")}  # final value fee on the buyer's total, incl. tax
FVF_FIXED = D("0.30")  # per order, in the order currency
SHOP_SUBSCRIPTION = D("39.00")  # monthly eBay shop subscription (GBP), a NON_SALE_CHARGE
SALE_HOLD = timedelta(days=2)  # sale funds become available for payout this long after payment
PAYOUT_HOUR = 6  # payouts start at 06:00 UTC
PAYOUT_SETTLES = timedelta(days=1)  # INITIATED -> SUCCEEDED


def q(x: Decimal) -> Decimal:
    return x.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def _scramble(n: int, digits: int) -> int:
    """A bijection on [0, 10**digits): distinct inputs give distinct, random-looking ids."""
    mod = 10 ** digits
    return (n * 7919 + 1_234_567) % mod


def order_id(day: date, i: int) -> str:
    s = f"{_scramble(day.toordinal() * 1000 + i, 12):012d}"
    return f"{s[:2]}-{s[2:7]}-{s[7:]}"


def _numeric_id(prefix: int, n: int, digits: int) -> str:
    return f"{prefix}{_scramble(n, digits):0{digits}d}"


def generate(world) -> dict[str, list[dict[str, Any]]]:
    t: dict[str, list[dict[str, Any]]] = {name: [] for name in (
        "ebay_orders", "ebay_order_lines", "ebay_refunds", "ebay_refund_lines", "ebay_transactions", "ebay_payouts")}
    kept: dict[str, tuple] = {}
    for day, rng, expected in world.days(SHARE):
        for i in range(world.count(rng, expected)):
            _order(world, t, rng, day, i, kept)
    _force_scenarios(world, t, kept)
    _subscriptions(world, t)
    _payouts(world, t)
    world.index("ebay_orders", "order_id", "created_at")
    world.index("ebay_order_lines", "order_id")
    world.index("ebay_refunds", "order_id")
    world.index("ebay_refund_lines", "order_id")
    world.index("ebay_transactions", "created_at", "payout_id")
    return t


def _order(world, t: dict, rng, day: date, i: int, kept: dict) -> None:
    us = rng.random() < 0.35
    customer = world.retail_customer(rng, ("US",) if us else ("GB",))
    ccy = "USD" if us else "GBP"
    created = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(seconds=rng.randint(6 * 3600, 23 * 3600 - 1))
    fx = world.fx_rate(ccy, created)
    oid = order_id(day, i)
    k = day.toordinal() * 1000 + i
    if us:
        rate = sum((r for _, r in world.tax_rates("us_sales_tax", "US", customer["region"])), ZERO)
    else:
        rate = UK_VAT
    promo = D("0.10") if rng.random() < 0.12 else None
    lines = []
    for j, (product, qty) in enumerate(world.pick_lines(rng, False)):
        price = cat.market_price(product, ccy)
        listed = price * qty
        discount = q(listed * promo) if promo else ZERO
        net = listed - discount  # listing basis: VAT-inclusive on eBay UK, ex tax on eBay US
        tax = q(net * rate) if us else q(net * rate / (1 + rate))
        lines.append({
            "line_id": _numeric_id(1, k * 10 + j, 13), "order_id": oid, "position": j, "sku": product.sku,
            "title": product.title, "variant_title": "per 10 cm" if product.unit == "10cm" else None,
            "quantity": qty, "unit_price": price, "list_amount": listed, "discount": discount, "tax": tax,
            "marketplace_tax": tax if us else ZERO,
            "unit_price_home": q(price * fx), "list_amount_home": q(listed * fx), "discount_home": q(discount * fx),
            "tax_home": q(tax * fx), "unit_cost_gbp": world.unit_cost(product.sku, created),
            "created_at": created,
        })
    merchandise = sum((l["list_amount"] - l["discount"] for l in lines), ZERO)
    if us:
        shipping = ZERO  # eBay US listings ship free
    else:
        std, free_over, _, _ = cat.SHIPPING["GBP"]
        shipping = ZERO if merchandise >= free_over else std
    shipping_tax = ZERO if us else q(shipping * rate / (1 + rate))
    tax = sum((l["tax"] for l in lines), ZERO)
    seller_total = merchandise + shipping  # what the seller is paid before fees
    buyer_total = seller_total + (tax if us else ZERO)
    # final value fee: a percentage of each line's buyer total (shipping on the first line) + a fixed fee
    fee = fee_home = ZERO
    for l in lines:
        basis = l["list_amount"] - l["discount"] + (l["tax"] if us else ZERO) + (shipping if l["position"] == 0 else ZERO)
        l["fee_basis"] = basis
        l["fee"] = q(basis * FVF_PCT[ccy]) + (FVF_FIXED if l["position"] == 0 else ZERO)
        l["fee_home"] = q(l["fee"] * fx)
        fee += l["fee"]
        fee_home += l["fee_home"]
    paid_at = created + timedelta(seconds=rng.randint(2, 50))
    order = {
        "order_id": oid, "legacy_order_id": f"{_numeric_id(1, k, 11)}-{_numeric_id(2, k, 12)}",
        "marketplace": "EBAY_US" if us else "EBAY_GB", "currency": ccy, "fx_rate": fx,
        "customer_id": customer["customer_id"], "buyer_username": f"{customer['first_name'].lower()}_{customer['customer_id'][1:]}",
        "email": customer["email"], "full_name": f"{customer['first_name']} {customer['last_name']}",
        "country": customer["country"], "region": customer["region"],
        "taxes_included": not us, "tax_treatment": "us_sales_tax" if us else "uk_vat", "tax_rate": rate,
        "created_at": created, "paid_at": paid_at, "fulfilled_at": None, "cancelled_at": None,
        "promotion_pct": promo, "shipping": shipping, "shipping_tax": shipping_tax,
        "shipping_home": q(shipping * fx), "shipping_tax_home": q(shipping_tax * fx),
        "seller_total": seller_total, "buyer_total": buyer_total,
        "tax": tax, "marketplace_tax": tax if us else ZERO,
        "marketplace_tax_home": sum((l["tax_home"] for l in lines), ZERO) if us else ZERO,
        "fee": fee, "fee_home": fee_home, "payment_ref": _numeric_id(7, k, 11),
    }
    order["buyer_total_home"] = (sum((l["list_amount_home"] - l["discount_home"] for l in lines), ZERO)
                                 + order["shipping_home"] + (order["marketplace_tax_home"] if us else ZERO))
    t["ebay_orders"].append(order)
    t["ebay_order_lines"].extend(lines)
    _sale(world, t, order, lines)
    remaining = {l["line_id"]: l["quantity"] for l in lines}
    kept[oid] = (order, lines, remaining, k)

    roll = rng.random()
    if roll < 0.025:  # cancelled by the buyer before dispatch: everything back
        at = created + timedelta(hours=rng.uniform(1, 20))
        order["cancelled_at"] = at
        _refund(world, t, rng, order, lines, remaining, at, "cancel", k, full=True)
        return
    order["fulfilled_at"] = created + timedelta(hours=rng.uniform(18, 96))
    if roll < 0.095:  # a return of part of one line
        _refund(world, t, rng, order, lines, remaining, order["fulfilled_at"] + timedelta(days=rng.uniform(2, 25)),
                "partial", k)
    if rng.random() < 0.015:  # a late refund, beyond getOrders' 90-day filter reach
        _refund(world, t, rng, order, lines, remaining, created + timedelta(days=rng.uniform(95, 130)), "late", k)


def _force_scenarios(world, t: dict, kept: dict) -> None:
    """Even a small world holds returns that land just after the initial sandbox clock
    (2026-01-01): two of orders placed in the fortnight before it, and a late one of an order
    placed in September, beyond getOrders' 90-day filter reach.  Chosen by date only, so the
    choice does not move when the world grows."""
    refunded = {r["order_id"] for r in t["ebay_refunds"]}
    eligible = [v for v in kept.values() if v[0]["cancelled_at"] is None and v[0]["order_id"] not in refunded]

    def created_in(lo: date, hi: date) -> list[tuple]:
        return sorted((v for v in eligible if lo <= v[0]["created_at"].date() < hi), key=lambda v: v[0]["created_at"])

    rng = world.rng(0xEBA1)
    for n, (order, lines, remaining, k) in enumerate(created_in(date(2025, 12, 10), date(2025, 12, 24))[:2]):
        at = datetime(2026, 1, 3 + 4 * n, 10, 30, tzinfo=UTC)
        _refund(world, t, rng, order, lines, remaining, at, "partial", k)
    for order, lines, remaining, k in created_in(date(2025, 9, 15), date(2025, 10, 1))[:1]:
        _refund(world, t, rng, order, lines, remaining, datetime(2026, 1, 12, 9, 15, tzinfo=UTC), "late", k)


def _sale(world, t: dict, order: dict, lines: list[dict]) -> None:
    """The Finances SALE transaction: the seller's part (buyer total less eBay-collected tax),
    net of the final value fee, in the seller's GBP funds (converted at the day's rate)."""
    fx = world.fx_rate(order["currency"], order["paid_at"])
    gross = q(order["seller_total"] * fx)
    fee = order["fee_home"]
    t["ebay_transactions"].append({
        "txn_id": order["order_id"], "txn_type": "SALE", "order_id": order["order_id"], "refund_id": None,
        "created_at": order["paid_at"] + timedelta(seconds=5), "booking_entry": "CREDIT",
        "gross": gross, "fee": fee, "net": gross - fee,
        "orig_currency": order["currency"], "orig_gross": order["seller_total"], "orig_fee": order["fee"],
        "exchange_rate": fx, "fee_basis": order["buyer_total"], "memo": None, "fee_type": None,
        "available_at": order["paid_at"] + SALE_HOLD, "payout_id": None,
    })


def _refund(world, t: dict, rng, order: dict, lines: list[dict], remaining: dict, at: datetime, kind: str,
            k: int, full: bool = False) -> None:
    candidates = [l for l in lines if remaining[l["line_id"]] > 0]
    if not candidates:
        return
    if full:
        picks = [(l, remaining[l["line_id"]]) for l in candidates]
    else:
        line = rng.choice(candidates)
        left = remaining[line["line_id"]]
        picks = [(line, rng.randint(1, left) if left > 1 else 1)]
    us = order["currency"] == "USD"
    fx = order["fx_rate"]
    refund_id = _numeric_id(5, k * 4 + {"cancel": 0, "partial": 1, "late": 2}[kind], 11)
    restock = True  # eBay refunds follow a return, or a cancellation before dispatch
    rows = []
    total = total_home = goods = tax = goods_h = tax_h = ZERO
    for line, qty in picks:
        remaining[line["line_id"]] -= qty
        line_net = line["list_amount"] - line["discount"]
        line_paid = line_net + (line["tax"] if us else ZERO)  # what the buyer paid for the line
        amount = q(line_paid * qty / line["quantity"])
        amount_h = q(amount * fx)
        if us:  # the eBay-collected tax share of the refunded amount
            r_tax = q(amount * line["tax"] / line_paid)
            r_tax_h = q(amount_h * line["tax_home"] / (line["list_amount_home"] - line["discount_home"] + line["tax_home"]))
        else:  # the VAT inside a VAT-inclusive amount
            r_tax = q(amount * UK_VAT / (1 + UK_VAT))
            r_tax_h = r_tax
        rows.append({
            "refund_id": refund_id, "order_id": order["order_id"], "line_id": line["line_id"], "quantity": qty,
            "amount": amount, "amount_home": amount_h, "goods": amount - r_tax, "tax": r_tax,
            "goods_home": amount_h - r_tax_h, "tax_home": r_tax_h,
            "cogs_reversal": line["unit_cost_gbp"] * qty if restock else ZERO, "created_at": at,
        })
        total += amount
        total_home += amount_h
        goods += amount - r_tax
        tax += r_tax
        goods_h += amount_h - r_tax_h
        tax_h += r_tax_h
    ship = ship_tax = ZERO
    if full and order["shipping"]:
        ship, ship_tax = order["shipping"] - order["shipping_tax"], order["shipping_tax"]
        total += order["shipping"]
        total_home += order["shipping_home"]
    marketplace_tax = tax if us else ZERO
    marketplace_tax_h = tax_h if us else ZERO
    t["ebay_refund_lines"].extend(rows)
    t["ebay_refunds"].append({
        "refund_id": refund_id, "order_id": order["order_id"], "created_at": at, "kind": kind,
        "note": {"cancel": "Buyer cancelled before dispatch", "partial": "Item returned", "late": "Late return"}[kind],
        "restock": restock, "total": total, "total_home": total_home,
        "goods": goods, "tax": tax, "shipping": ship, "shipping_tax": ship_tax,
        "goods_home": goods_h, "tax_home": tax_h, "shipping_home": ship, "shipping_tax_home": ship_tax,
        "marketplace_tax": marketplace_tax, "marketplace_tax_home": marketplace_tax_h,
        "cogs_reversal_home": q(sum((r["cogs_reversal"] for r in rows), ZERO)),
        "units": sum(r["quantity"] for r in rows),
    })
    # the seller's ledger: eBay refunds its own collected tax, the seller pays back the rest
    seller_part = total - marketplace_tax
    rfx = world.fx_rate(order["currency"], at)
    gross = -q(seller_part * rfx)
    t["ebay_transactions"].append({
        "txn_id": refund_id, "txn_type": "REFUND", "order_id": order["order_id"], "refund_id": refund_id,
        "created_at": at + timedelta(seconds=20), "booking_entry": "DEBIT", "gross": gross, "fee": ZERO, "net": gross,
        "orig_currency": order["currency"], "orig_gross": -seller_part, "orig_fee": ZERO, "exchange_rate": rfx,
        "fee_basis": None, "memo": None, "fee_type": None, "available_at": at + timedelta(seconds=20), "payout_id": None,
    })


def _subscriptions(world, t: dict) -> None:
    """The eBay shop subscription, charged on the 1st of every month."""
    d = date(world.start.year, world.start.month, 1)
    while d < world.through:
        at = datetime(d.year, d.month, 1, 3, 0, 0, tzinfo=UTC)
        t["ebay_transactions"].append({
            "txn_id": _numeric_id(8, d.toordinal(), 10), "txn_type": "NON_SALE_CHARGE", "order_id": None,
            "refund_id": None, "created_at": at, "booking_entry": "DEBIT", "gross": ZERO, "fee": SHOP_SUBSCRIPTION,
            "net": -SHOP_SUBSCRIPTION, "orig_currency": "GBP", "orig_gross": ZERO, "orig_fee": SHOP_SUBSCRIPTION,
            "exchange_rate": D("1"), "fee_basis": None, "memo": "Store subscription fee",
            "fee_type": "SUBSCRIPTION_FEE", "available_at": at, "payout_id": None,
        })
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _payouts(world, t: dict) -> None:
    """Daily payouts at 06:00 UTC of everything available before that day; a balance that is not
    positive is carried to the next day."""
    txns = sorted(t["ebay_transactions"], key=lambda x: x["available_at"])
    if not txns:
        return
    day = txns[0]["available_at"].date() + timedelta(days=1)
    last = world.through + timedelta(days=5)
    pending: list[dict] = []
    i = 0
    while day <= last:
        cut = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        while i < len(txns) and txns[i]["available_at"] < cut:
            pending.append(txns[i])
            i += 1
        amount = sum((x["net"] for x in pending), ZERO)
        if pending and amount > 0:
            pid = _numeric_id(6, day.toordinal(), 9)
            at = cut + timedelta(hours=PAYOUT_HOUR)
            for x in pending:
                x["payout_id"] = pid
            t["ebay_payouts"].append({
                "payout_id": pid, "payout_at": at, "succeeded_at": at + PAYOUT_SETTLES, "amount": amount,
                "currency": "GBP", "transaction_count": len(pending),
                "bank_reference": f"EBAY{_scramble(day.toordinal(), 8):08d}",
            })
            pending = []
        day += timedelta(days=1)
