"""The London showroom's Square point of sale, generated from the channel's own random streams.

Walk-in retail sales, Monday to Saturday 09:00-18:00 Europe/London, at the catalogue's
VAT-inclusive GBP list prices (UK VAT 20 %, an INCLUSIVE order tax).  What the world records,
in Square's terms (integer pence, Square-shaped ids):

- an order per sale (`square_orders`, kind 'sale') with its itemisation (`square_order_lines`);
  a few customers give their details (a Square customer id), most stay anonymous; some sales
  carry the showroom's 10 % discount;
- payments: card (Square's in-person processing fee 1.75 %, known a little after capture, as
  Square computes it asynchronously) or cash (no fee, never paid out: it goes to the till and
  the bank by deposit, `processor` 'cash' in the marts); some card attempts are declined
  (FAILED) or voided after authorisation (CANCELED) before the customer pays again;
- returns: a refund (`square_refunds`) of the original tender, with a return order
  (`square_orders` kind 'return', `square_return_lines`) naming the source order and line;
  returned goods go back on the shop floor;
- end-of-day payouts: card payments and card refunds of a business day are paid out the next
  morning (`square_payouts`, SENT then PAID on arrival) with one entry per movement
  (`square_payout_entries`: CHARGE gross/fee/net, REFUND negative).

Everything derives from the day (ids, payouts), so a longer horizon only appends rows.
"""
from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from finance_pipeline.sandbox import catalogue as cat
from finance_pipeline.sandbox.world import ChannelWorld, business_date, day_start, q

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
D = Decimal
SHARE = 0.10  # of the Shopify volume
OPEN_AT, CLOSE_AT = time(9), time(18)
VAT_RATE = D("0.20")
CARD_FEE_RATE = D("0.0175")  # Square UK, in person
DISCOUNT_RATE = D("0.10")
CURRENCY = "GBP"

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_UPPER = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def sq_id(seed: int, kind: str, *key: Any, length: int = 27, alphabet: str = _B62) -> str:
    """A deterministic Square-looking id (base62 for payments/orders, upper case for catalog)."""
    digest = hashlib.blake2b(f"square:{seed}:{kind}:{':'.join(map(str, key))}".encode(), digest_size=24).digest()
    num = int.from_bytes(digest, "big")
    out = []
    for _ in range(length):
        num, r = divmod(num, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


def location_id(seed: int) -> str:
    return "L" + sq_id(seed, "location", length=12, alphabet=_UPPER)


def variation_id(seed: int, sku: str) -> str:
    return sq_id(seed, "variation", sku, length=24, alphabet=_UPPER)


def item_id(seed: int, sku: str) -> str:
    return sq_id(seed, "item", sku, length=24, alphabet=_UPPER)


def payout_id(seed: int, day: date) -> str:
    digest = hashlib.blake2b(f"square:{seed}:payout:{day.isoformat()}".encode(), digest_size=16).digest()
    return f"po_{uuid.UUID(bytes=digest, version=4)}"


def minor(x: Decimal) -> int:
    return int((x * 100).to_integral_value(rounding=ROUND_HALF_UP))


def share_minor(total: int, part: int, whole: int) -> int:
    """`total` x part / whole in pence, rounded half up (pro-rata of a line's discount or tax)."""
    return int((D(total) * part / whole).to_integral_value(rounding=ROUND_HALF_UP))


def _local(d: date, seconds: int) -> datetime:
    return datetime.combine(d, OPEN_AT, tzinfo=LONDON).astimezone(UTC) + timedelta(seconds=seconds)


def _opening_moment(rng, d: date) -> datetime:
    span = int((datetime.combine(d, CLOSE_AT) - datetime.combine(d, OPEN_AT)).total_seconds())
    return _local(d, rng.randint(0, span - 1))


def generate(world: ChannelWorld) -> dict[str, list[dict[str, Any]]]:
    seed = world.seed
    loc = location_id(seed)
    t: dict[str, list[dict[str, Any]]] = {name: [] for name in (
        "square_locations", "square_catalog", "square_orders", "square_order_lines", "square_return_lines",
        "square_payments", "square_refunds", "square_payouts", "square_payout_entries")}
    t["square_locations"].append({"location_id": loc, "name": "London Showroom", "timezone": "Europe/London",
                                  "currency": CURRENCY, "country": "GB", "created_at": world.start - timedelta(days=800)})
    for p in cat.PRODUCTS:
        t["square_catalog"].append({
            "variation_id": variation_id(seed, p.sku), "item_id": item_id(seed, p.sku), "sku": p.sku,
            "item_name": p.title, "variation_name": "per 10 cm" if p.unit == "10cm" else "Regular",
            "price": minor(cat.market_price(p, CURRENCY)), "updated_at": world.start - timedelta(days=30)})
    world.index("square_orders", "order_id", "updated_at")
    world.index("square_order_lines", "order_id")
    world.index("square_return_lines", "order_id")
    world.index("square_payments", "payment_id", "order_id", "created_at")
    world.index("square_refunds", "payment_id", "created_at")
    world.index("square_payout_entries", "payout_id")

    for d, rng, expected in world.days(SHARE):
        if d.weekday() == 6:  # closed on Sundays; the other days carry the week's share
            continue
        n = world.count(rng, expected * 7 / 6)
        moments = sorted(_opening_moment(rng, d) for _ in range(n))
        for i, created in enumerate(moments):
            _sale(world, t, rng, loc, d, i, created)
    _payouts(world, t, loc)
    return t


def _sale(world: ChannelWorld, t: dict, rng, loc: str, d: date, i: int, created: datetime) -> None:
    seed = world.seed
    key = (d.toordinal(), i)
    order_id = sq_id(seed, "order", *key)
    customer = world.retail_customer(rng, ("GB",)) if rng.random() < 0.15 else None
    customer_id = sq_id(seed, "customer", customer["customer_id"], length=26, alphabet=_UPPER) if customer else None
    discounted = rng.random() < 0.08
    lines = []
    for n, (product, qty) in enumerate(world.pick_lines(rng, False)):
        price = minor(cat.market_price(product, CURRENCY))
        gross = price * qty
        discount = minor(q(D(gross) / 100 * DISCOUNT_RATE)) if discounted else 0
        total = gross - discount
        tax = minor(q(D(total) / 100 * VAT_RATE / (1 + VAT_RATE)))
        lines.append({
            "order_id": order_id, "uid": sq_id(seed, "line", *key, n, length=22), "position": n,
            "sku": product.sku, "variation_id": variation_id(seed, product.sku), "name": product.title,
            "variation_name": "per 10 cm" if product.unit == "10cm" else "Regular", "quantity": qty,
            "base_price": price, "gross_sales": gross, "discount": discount, "tax": tax, "total": total,
            "tax_rate": VAT_RATE, "unit_cost_gbp": world.unit_cost(product.sku, created),
        })
    total = sum(line["total"] for line in lines)
    # tenders: failed / voided card attempts first, then the payment that went through
    at = created + timedelta(seconds=rng.randint(20, 90))
    payments = []
    cash = total < 30000 and rng.random() < 0.25
    if not cash and rng.random() < 0.06:
        status = "FAILED" if rng.random() < 0.75 else "CANCELED"
        payments.append(_payment(world, rng, key, len(payments), order_id, loc, customer_id, at, "CARD", status, total))
        at += timedelta(seconds=rng.randint(30, 240))
        cash = rng.random() < 0.3
    paid = _payment(world, rng, key, len(payments), order_id, loc, customer_id, at,
                    "CASH" if cash else "CARD", "COMPLETED", total)
    payments.append(paid)
    t["square_payments"].extend(payments)
    t["square_order_lines"].extend(lines)
    t["square_orders"].append({
        "order_id": order_id, "location_id": loc, "kind": "sale", "source_order_id": None, "customer_id": customer_id,
        "created_at": created, "closed_at": paid["created_at"], "updated_at": paid["created_at"],
        "discount_name": "Showroom 10%" if discounted else None, "total": total, "ticket": f"S{d:%y%m%d}-{i + 1:03d}",
    })
    roll = rng.random()
    if roll < 0.015:  # changed their mind the same day: everything back
        _refund(world, t, rng, key, loc, paid, lines, {l["uid"]: l["quantity"] for l in lines},
                created + timedelta(minutes=rng.randint(20, 240)), "Customer changed mind")
    elif roll < 0.08:  # brought one item back within three weeks
        line = rng.choice(lines)
        qty = rng.randint(1, line["quantity"]) if line["quantity"] > 1 else 1
        back = _opening_moment(rng, d + timedelta(days=rng.randint(1, 21)))
        if back.astimezone(LONDON).weekday() == 6:
            back += timedelta(days=1)
        _refund(world, t, rng, key, loc, paid, lines, {line["uid"]: qty}, back,
                rng.choice(["Wrong colour", "Did not fit the window", "Faulty item"]))


def _payment(world: ChannelWorld, rng, key: tuple, n: int, order_id: str, loc: str, customer_id: str | None,
             at: datetime, source: str, status: str, amount: int) -> dict:
    seed = world.seed
    pid = sq_id(seed, "payment", *key, n, length=29)
    fee = fee_at = None
    if source == "CARD" and status == "COMPLETED":
        fee = minor(q(D(amount) / 100 * CARD_FEE_RATE))
        fee_at = at + timedelta(seconds=rng.randint(60, 1800))
    given = None
    if source == "CASH":
        note = next(n for n in (500, 1000, 2000, 5000, 10000, 20000, 50000) if n >= amount) if amount <= 50000 else amount
        given = rng.choice([amount, note])
    return {
        "payment_id": pid, "order_id": order_id, "location_id": loc, "customer_id": customer_id,
        "created_at": at, "source_type": source, "status": status, "amount": amount, "currency": CURRENCY,
        "fee": fee, "fee_at": fee_at, "cash_given": given,
        "card_brand": rng.choice(["VISA", "MASTERCARD", "AMERICAN_EXPRESS", "VISA", "MASTERCARD"]) if source == "CARD" else None,
        "last_4": f"{rng.randint(0, 9999):04d}" if source == "CARD" else None,
        "entry_method": rng.choice(["CONTACTLESS", "CONTACTLESS", "EMV"]) if source == "CARD" else None,
        "failure_code": ("GENERIC_DECLINE" if status == "FAILED" else None),
    }


def _refund(world: ChannelWorld, t: dict, rng, key: tuple, loc: str, payment: dict, lines: list[dict],
            quantities: dict[str, int], at: datetime, reason: str) -> None:
    seed = world.seed
    return_order = sq_id(seed, "return-order", *key)
    rows = []
    for n, line in enumerate(l for l in lines if l["uid"] in quantities):
        qty = quantities[line["uid"]]
        gross = line["base_price"] * qty
        discount = share_minor(line["discount"], qty, line["quantity"])
        tax = share_minor(line["tax"], qty, line["quantity"])
        rows.append({
            "order_id": return_order, "uid": sq_id(seed, "return-line", *key, n, length=22), "position": n,
            "source_order_id": line["order_id"], "source_line_uid": line["uid"], "sku": line["sku"],
            "variation_id": line["variation_id"], "name": line["name"], "variation_name": line["variation_name"],
            "quantity": qty, "base_price": line["base_price"], "gross_return": gross, "discount": discount,
            "tax": tax, "total": gross - discount, "tax_rate": line["tax_rate"], "unit_cost_gbp": line["unit_cost_gbp"],
            "restocked": True,
        })
    amount = sum(r["total"] for r in rows)
    t["square_return_lines"].extend(rows)
    t["square_orders"].append({
        "order_id": return_order, "location_id": loc, "kind": "return", "source_order_id": payment["order_id"],
        "customer_id": payment["customer_id"], "created_at": at, "closed_at": at, "updated_at": at,
        "discount_name": None, "total": -amount, "ticket": None,
    })
    t["square_refunds"].append({
        "refund_id": f"{payment['payment_id']}_{sq_id(seed, 'refund', *key, length=26)}",
        "payment_id": payment["payment_id"], "order_id": return_order, "location_id": loc, "created_at": at,
        "amount": amount, "currency": CURRENCY, "status": "COMPLETED", "reason": reason,
        "destination_type": payment["source_type"],
    })


def _payouts(world: ChannelWorld, t: dict, loc: str) -> None:
    """Card takings of each business day, less fees and card refunds, paid out the next morning."""
    seed = world.seed
    by_day: dict[date, list[dict]] = {}
    payments = {p["payment_id"]: p for p in t["square_payments"]}
    for p in t["square_payments"]:
        if p["source_type"] == "CARD" and p["status"] == "COMPLETED":
            by_day.setdefault(business_date(p["created_at"]), []).append(
                {"type": "CHARGE", "at": p["fee_at"], "gross": p["amount"], "fee": p["fee"],
                 "payment_id": p["payment_id"], "refund_id": None})
    for r in t["square_refunds"]:
        if r["destination_type"] == "CARD":
            by_day.setdefault(business_date(r["created_at"]), []).append(
                {"type": "REFUND", "at": r["created_at"], "gross": -r["amount"], "fee": 0,
                 "payment_id": r["payment_id"], "refund_id": r["refund_id"]})
    del payments
    for day in sorted(by_day):
        entries = sorted(by_day[day], key=lambda e: (e["at"], e["payment_id"]))
        pid = payout_id(seed, day)
        created = day_start(day + timedelta(days=1)) + timedelta(hours=2)
        amount = sum(e["gross"] - e["fee"] for e in entries)
        t["square_payouts"].append({
            "payout_id": pid, "location_id": loc, "created_at": created, "arrival_date": day + timedelta(days=1),
            "paid_at": created + timedelta(hours=7), "amount": amount, "currency": CURRENCY,
            "business_date": day, "entry_count": len(entries),
        })
        for n, e in enumerate(entries):
            t["square_payout_entries"].append({
                "entry_id": "poe_" + sq_id(seed, "payout-entry", day.toordinal(), n, length=26), "payout_id": pid,
                "position": n, "effective_at": e["at"], "type": e["type"], "gross": e["gross"], "fee": e["fee"],
                "net": e["gross"] - e["fee"], "currency": CURRENCY, "payment_id": e["payment_id"],
                "refund_id": e["refund_id"],
            })
