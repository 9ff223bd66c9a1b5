"""PayPal Checkout on the business's own GBP storefront, in the sandbox world.

Some UK retail buyers pay with PayPal (Orders v2, intent CAPTURE).
The site sends PayPal an itemised, tax-exclusive breakdown (`unit_amount` and per-unit `tax`),
so every amount is exact.  The PayPal account is GBP; PayPal keeps its fee from each capture;
the business sweeps the balance to the bank every Monday (a T0400 withdrawal), which is the
payout that must reconcile to the captures, refunds and fees before it.

Truth tables: `paypal_orders`, `paypal_order_lines`, `paypal_refunds` (full refunds of returned
orders, partial goodwill refunds), `paypal_transactions` (what Transaction Search lists: T0006
captures, T1107 refunds, T0400 withdrawals, each visible only after PayPal's reporting delay of
up to 3 hours) and `paypal_withdrawals`.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from finance_pipeline.sandbox import catalogue as cat

UTC = timezone.utc
D = Decimal
ZERO = D("0.00")
SHARE = 0.04
VAT = cat.VAT_RATES["GB"]
FEE_PCT, FEE_FIXED = D("0.029"), D("0.30")  # UK domestic PayPal Checkout
REPORTING_DELAY_H = (0.2, 3.0)
WITHDRAWAL_WEEKDAY, WITHDRAWAL_HOUR = 0, 8  # Mondays, 08:00 UTC
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def q(x: Decimal) -> Decimal:
    return x.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def paypal_id(kind: str, n: int, length: int = 17) -> str:
    """Deterministic PayPal-looking ids (17 upper-case alphanumerics)."""
    num = int.from_bytes(hashlib.blake2b(f"paypal:{kind}:{n}".encode(), digest_size=16).digest(), "big")
    out = []
    for _ in range(length):
        num, r = divmod(num, 36)
        out.append(ALPHABET[r])
    return "".join(out)


def generate(world) -> dict[str, list[dict[str, Any]]]:
    t: dict[str, list[dict[str, Any]]] = {n: [] for n in (
        "paypal_orders", "paypal_order_lines", "paypal_refunds", "paypal_transactions", "paypal_withdrawals")}
    uk_trade = [c for c in world.trade_customers if c["country"] == "GB"]
    kept: dict[str, tuple] = {}
    for day, rng, expected in world.days(SHARE):
        for i in range(world.count(rng, expected)):
            _order(world, t, rng, day, i, uk_trade, kept)
    _force_scenarios(world, t, kept)
    _withdrawals(world, t)
    world.index("paypal_orders", "order_id")
    world.index("paypal_order_lines", "order_id")
    world.index("paypal_refunds", "order_id")
    world.index("paypal_transactions", "initiated_at")
    return t


def _delay(rng) -> timedelta:
    return timedelta(hours=rng.uniform(*REPORTING_DELAY_H))


def _txn(t: dict, rng, kind: str, n: int, code: str, at: datetime, amount: Decimal, fee: Decimal,
         txn_id: str | None = None, **extra) -> dict:
    row = {"txn_id": txn_id or paypal_id(kind, n), "event_code": code, "initiated_at": at, "updated_at": at,
           "visible_at": at + _delay(rng), "amount": amount, "fee": fee, "net": amount - fee, "currency": "GBP",
           "status": "S", "order_id": None, "capture_id": None, "invoice_id": None, "payer_email": None,
           "payer_id": None, "withdrawal_id": None, **extra}
    t["paypal_transactions"].append(row)
    return row


def _force_scenarios(world, t: dict, kept: dict) -> None:
    """Even a small world holds refunds made just after the initial sandbox clock (2026-01-01):
    a return of an order of mid-December and a goodwill refund of another.  Chosen by date only."""
    refunded = {r["order_id"] for r in t["paypal_refunds"]}
    picks = sorted((v for v in kept.values() if v[0]["order_id"] not in refunded
                    and date(2025, 12, 8) <= v[0]["created_at"].date() < date(2025, 12, 22)),
                   key=lambda v: v[0]["created_at"])[:2]
    for n, (order, lines, k) in enumerate(picks):
        at = datetime(2026, 1, 4 + 5 * n, 11, 0, tzinfo=UTC)
        _refund(t, world.rng(0x9A1, n), order, lines, at, order["total"] if n == 0 else q(order["total"] / 5), k, n == 0)


def _order(world, t: dict, rng, day: date, i: int, uk_trade: list[dict], kept: dict) -> None:
    # trade customers pay their invoices by card or transfer; the PayPal checkout is retail's
    trade = False
    customer = world.retail_customer(rng, ("GB",))
    k = day.toordinal() * 1000 + i
    created = datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(seconds=rng.randint(7 * 3600, 22 * 3600))
    oid, cid = paypal_id("order", k), paypal_id("capture", k)
    lines = []
    for j, (product, qty) in enumerate(world.pick_lines(rng, trade)):
        unit = cat.trade_price(product, "GBP") if trade else q(cat.market_price(product, "GBP") / (1 + VAT))
        lines.append({"order_id": oid, "position": j, "sku": product.sku, "name": product.title, "quantity": qty,
                      "unit_amount": unit, "unit_tax": q(unit * VAT), "unit_cost_gbp": world.unit_cost(product.sku, created)})
    item_total = sum((l["unit_amount"] * l["quantity"] for l in lines), ZERO)
    tax_total = sum((l["unit_tax"] * l["quantity"] for l in lines), ZERO)
    total = item_total + tax_total
    captured = created + timedelta(seconds=rng.randint(20, 300))
    fee = q(total * FEE_PCT) + FEE_FIXED
    number = f"{'TR' if trade else 'PP'}-{k % 10_000_000:07d}"
    payer_id = paypal_id("payer", int(customer["customer_id"][1:]), 13)
    order = {
        "order_id": oid, "capture_id": cid, "invoice_id": number, "kind": "trade" if trade else "retail",
        "customer_id": customer["customer_id"], "payer_id": payer_id, "email": customer["email"],
        "given_name": customer["first_name"], "surname": customer["last_name"], "company": customer["company"],
        "country": "GB", "currency": "GBP", "tax_treatment": "uk_vat", "created_at": created, "captured_at": captured,
        "item_total": item_total, "tax_total": tax_total, "total": total, "fee": fee, "net": total - fee,
        "refunded": ZERO,
    }
    t["paypal_orders"].append(order)
    t["paypal_order_lines"].extend(lines)
    kept[oid] = (order, lines, k)
    _txn(t, rng, "txn", k * 4, "T0006", captured, total, fee, txn_id=cid, order_id=oid, capture_id=cid, invoice_id=number,
         payer_email=customer["email"], payer_id=payer_id)
    roll = rng.random()
    if roll < 0.03:  # returned: everything back, goods restocked
        _refund(t, rng, order, lines, captured + timedelta(days=rng.uniform(3, 30)), total, k, True)
    elif roll < 0.07:  # a goodwill partial refund, nothing returned
        _refund(t, rng, order, lines, captured + timedelta(days=rng.uniform(2, 20)),
                q(total * D(rng.choice([10, 15, 20, 25])) / 100), k, False)


def _refund(t: dict, rng, order: dict, lines: list[dict], at: datetime, amount: Decimal, k: int, full: bool) -> None:
    tax = q(amount * order["tax_total"] / order["total"])
    rid = paypal_id("refund", k)
    order["refunded"] += amount
    t["paypal_refunds"].append({
        "refund_id": rid, "order_id": order["order_id"], "capture_id": order["capture_id"], "created_at": at,
        "amount": amount, "goods": amount - tax, "tax": tax, "full": full,
        "units": sum(l["quantity"] for l in lines) if full else 0,
        "cogs_reversal_home": q(sum((l["unit_cost_gbp"] * l["quantity"] for l in lines), ZERO)) if full else ZERO,
        "note": "Order returned" if full else "Goodwill refund",
    })
    # PayPal keeps its fee on refunds of UK domestic payments: the whole refund comes off the balance
    _txn(t, rng, "txn", k * 4 + 1, "T1107", at, -amount, ZERO, txn_id=rid, order_id=order["order_id"],
         capture_id=order["capture_id"], invoice_id=order["invoice_id"], refund_id=rid,
         payer_email=order["email"], payer_id=order["payer_id"])


def _withdrawals(world, t: dict) -> None:
    """Every Monday the whole available balance goes to the bank (if positive)."""
    rows = sorted(t["paypal_transactions"], key=lambda r: r["initiated_at"])
    rng = world.rng(0x7400)
    d = world.start.date()
    while d.weekday() != WITHDRAWAL_WEEKDAY:
        d += timedelta(days=1)
    i, pending = 0, []
    while d <= world.through + timedelta(days=7):
        at = datetime(d.year, d.month, d.day, WITHDRAWAL_HOUR, tzinfo=UTC)
        while i < len(rows) and rows[i]["initiated_at"] < at:
            pending.append(rows[i])
            i += 1
        amount = sum((r["net"] for r in pending), ZERO)
        if pending and amount > 0:
            row = _txn(t, rng, "withdrawal", d.toordinal(), "T0400", at, -amount, ZERO)
            for r in pending:
                r["withdrawal_id"] = row["txn_id"]
            row["withdrawal_id"] = row["txn_id"]
            t["paypal_withdrawals"].append({"withdrawal_id": row["txn_id"], "at": at, "amount": amount,
                                            "visible_at": row["visible_at"], "transaction_count": len(pending)})
            pending = []
        d += timedelta(days=7)
