"""The WooCommerce store in the sandbox world: an EU retail web shop selling in EUR.

The store (`curtains-eu.example`) runs WooCommerce in Europe/Dublin time and sells to retail
buyers in Ireland, France, Germany and the Netherlands at the EUR list prices, VAT included
(`prices_include_tax`), at the buyer's country rate (EU OSS).  The shop's base currency is GBP
(the business's home currency); a multi-currency plugin prices the EUR storefront and writes
the GBP rate of the day on each order (`_base_currency_exchange_rate` in `meta_data`).

Payment goes through the store's own gateways (Stripe card, PayPal): recorded on the order
(`payment_method`, `transaction_id`, `date_paid`).  Some attempts fail (status `failed`: never
paid, no revenue).  Paid orders are completed when shipped; some are cancelled and refunded in
full (status `refunded`), some partly refunded weeks later (refund objects with line items and
maybe the shipping), a few refunded months later, and a few edited later (a corrected shipping
address and note), which moves `date_modified`.  Returned goods go back to stock (a cancelled
order, an unused return, every late return); goods damaged in transit do not.  WooCommerce's
REST API shows restocking only as the original line's cumulative `_restock_refunded_items`
meta, so the generator keeps to what that can express: the refunds of a line that restock
are always its latest ones (a late return restocks), and staging attributes restocked units to
a line's refunds newest first.

Amounts are what WooCommerce records: line `subtotal` / `total` ex tax (before / after the
coupon), `subtotal_tax` / `total_tax`, shipping `total` ex tax with its tax; the tax-inclusive
list price per unit is the catalogue's EUR price.  Refund rows are positive amounts (the API
shows them negative on refund line items).
"""
from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.sandbox import catalogue as cat

SHARE = 0.10  # of the Shopify volume
COUNTRIES = ("IE", "FR", "DE", "NL")
CURRENCY = "EUR"
STORE_TIMEZONE = "Europe/Dublin"
FIRST_POST_ID = 24_000  # WordPress post ids: orders and refunds share one sequence
FIRST_ITEM_ID = 61_000  # order item ids (line items, shipping lines, tax lines, coupon lines)
D = Decimal
ZERO = D("0.00")
CENT = D("0.01")
UTC = timezone.utc


def q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def incl_tax(amount: Decimal, rate: Decimal) -> Decimal:
    """The VAT inside a tax-inclusive amount, rounded to the cent."""
    return q(amount * rate / (1 + rate))


def _txn_id(method: str, order_id: int, seed: int) -> str:
    digest = hashlib.blake2b(f"{seed}:wc:{order_id}".encode(), digest_size=16).hexdigest()
    if method == "stripe":
        return f"pi_3{digest[:23]}"
    return digest[:17].upper()  # a PayPal capture id


class _Seq:
    def __init__(self, start: int) -> None:
        self.n = start

    def __call__(self) -> int:
        self.n += 1
        return self.n


def generate(world) -> dict[str, list[dict]]:
    t: dict[str, list[dict]] = {k: [] for k in (
        "woocommerce_orders", "woocommerce_order_lines", "woocommerce_refunds", "woocommerce_refund_lines")}
    post = _Seq(FIRST_POST_ID)
    item = _Seq(FIRST_ITEM_ID)
    for day, rng, expected in world.days(SHARE):
        for _ in range(world.count(rng, expected)):
            created = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                seconds=rng.randint(6 * 3600, 23 * 3600 - 1))
            _order(world, rng, created, post, item, t)
    _tax_rounded_at_subtotal(world, t)
    world.index("woocommerce_orders", "order_id", "created_at")
    world.index("woocommerce_order_lines", "order_id")
    world.index("woocommerce_refunds", "order_id", "created_at")
    world.index("woocommerce_refund_lines", "refund_id")
    return t


def _tax_rounded_at_subtotal(world, t: dict) -> None:
    """Scenario S13: orders taken while the store rounded tax at subtotal level
    (`woocommerce_tax_round_at_subtotal`): the order's cart tax (`cart_tax`, its tax line's
    `tax_total`, `total_tax`) is the sum of the lines' unrounded VAT rounded once, while each line
    keeps its own rounded `total_tax`.  Kept as `cart_tax_at_subtotal` on the orders where the two
    differ (none elsewhere).  Draws on the scenario's own random stream: no other value changes."""
    rng = random.Random(world.seed * 15_485_867 + 29)
    lines: dict[int, list[dict]] = {}
    for line in t["woocommerce_order_lines"]:
        lines.setdefault(line["order_id"], []).append(line)
    for order in t["woocommerce_orders"]:
        mine = lines.get(order["order_id"], [])
        if len(mine) < 2 or rng.random() >= 0.4:
            continue
        rate = order["tax_rate"]
        exact = q(sum(((l["total"] + l["total_tax"]) * rate / (1 + rate) for l in mine), ZERO))
        if exact != sum((l["total_tax"] for l in mine), ZERO):
            order["cart_tax_at_subtotal"] = exact


def _order(world, rng: random.Random, created: datetime, post: _Seq, item: _Seq, t: dict) -> None:
    customer = world.retail_customer(rng, COUNTRIES)
    country = customer["country"]
    (tax_title, rate), = world.tax_rates("eu_oss_vat", country, None)
    order_id = post()
    coupon, pct = (rng.choice(cat.DISCOUNT_CODES) if rng.random() < 0.12 else (None, None))
    method = "stripe" if rng.random() < 0.7 else "ppcp-gateway"
    order = {
        "order_id": order_id, "customer_id": customer["customer_id"],
        "wc_customer_id": (1000 + int(customer["customer_id"][1:])) if rng.random() < 0.75 else 0,
        "first_name": customer["first_name"], "last_name": customer["last_name"], "email": customer["email"],
        "country": country, "currency": CURRENCY, "fx_rate": world.fx_rate(CURRENCY, created),
        "tax_rate": rate, "tax_label": tax_title, "tax_rate_id": 1 + COUNTRIES.index(country),
        "coupon_code": coupon, "coupon_pct": pct, "payment_method": method,
        "payment_method_title": "Credit Card (Stripe)" if method == "stripe" else "PayPal",
        "created_at": created, "paid_at": None, "failed_at": None, "transaction_id": None,
        "completed_at": None, "edited_at": None, "edit_note": None,
        "shipping_item_id": item(), "tax_item_id": item(),
    }
    lines = []
    for product, qty in world.pick_lines(rng, False):
        price = cat.market_price(product, CURRENCY)
        listed = price * qty
        net = listed - (q(listed * pct) if pct else ZERO)
        subtotal_tax, total_tax = incl_tax(listed, rate), incl_tax(net, rate)
        lines.append({
            "line_id": item(), "order_id": order_id, "product_id": 900 + cat.PRODUCTS.index(product),
            "sku": product.sku, "name": product.title, "quantity": qty, "price": price,
            "subtotal": listed - subtotal_tax, "subtotal_tax": subtotal_tax,
            "total": net - total_tax, "total_tax": total_tax,
            "unit_cost_gbp": world.unit_cost(product.sku, created),
        })
    merchandise = sum((l["total"] + l["total_tax"] for l in lines), ZERO)
    std, free_over, _, _ = cat.SHIPPING[CURRENCY]
    shipping_gross = ZERO if merchandise >= free_over else std
    order["shipping_tax"] = incl_tax(shipping_gross, rate)
    order["shipping_total"] = shipping_gross - order["shipping_tax"]
    order["total"] = merchandise + shipping_gross
    t["woocommerce_orders"].append(order)
    t["woocommerce_order_lines"].extend(lines)

    settle = created + timedelta(seconds=rng.randint(5, 90))
    if rng.random() < 0.035:  # the card or PayPal payment failed: never paid, no revenue
        order["failed_at"] = settle
        return
    order["paid_at"] = settle
    order["transaction_id"] = _txn_id(method, order_id, world.seed)
    remaining = {l["line_id"]: l["quantity"] for l in lines}
    roll = rng.random()
    if roll < 0.02:  # cancelled before shipping: refunded in full
        _refund(rng, order, lines, remaining, created + timedelta(hours=rng.uniform(1, 20)), post, item, t,
                full=True, reason="Order cancelled by customer")
        return
    order["completed_at"] = created + timedelta(hours=rng.uniform(20, 100))
    if roll < 0.09:
        damaged = rng.random() < 0.5
        _refund(rng, order, lines, remaining, order["completed_at"] + timedelta(days=rng.uniform(2, 25)),
                post, item, t, restock=not damaged,
                reason="Damaged in transit" if damaged else "Returned unused")
    if rng.random() < 0.012:
        _refund(rng, order, lines, remaining, created + timedelta(days=rng.uniform(60, 120)), post, item, t,
                reason="Late return")
    if rng.random() < 0.03:
        order["edited_at"] = created + timedelta(days=rng.uniform(7, 30), seconds=rng.randint(0, 3600))
        order["edit_note"] = "Delivery address corrected by customer service"


def _refund(rng: random.Random, order: dict, lines: list[dict], remaining: dict[int, int], at: datetime,
            post: _Seq, item: _Seq, t: dict, full: bool = False, restock: bool = True, reason: str = "") -> None:
    candidates = [l for l in lines if remaining[l["line_id"]] > 0]
    if not candidates:
        return
    if full:
        picks = [(l, remaining[l["line_id"]]) for l in candidates]
    else:
        line = rng.choice(candidates)
        left = remaining[line["line_id"]]
        picks = [(line, rng.randint(1, left) if left > 1 else 1)]
    refund_id = post()
    amount = ZERO
    for line, qty in picks:
        already = line["quantity"] - remaining[line["line_id"]]
        remaining[line["line_id"]] -= qty
        if remaining[line["line_id"]] == 0:  # the last units take what is left, so a line never over-refunds
            total = line["total"] - q(line["total"] * already / line["quantity"])
            tax = line["total_tax"] - q(line["total_tax"] * already / line["quantity"])
        else:
            total = q(line["total"] * qty / line["quantity"])
            tax = q(line["total_tax"] * qty / line["quantity"])
        t["woocommerce_refund_lines"].append({
            "refund_item_id": item(), "refund_id": refund_id, "order_id": order["order_id"],
            "line_id": line["line_id"], "sku": line["sku"], "quantity": qty, "total": total, "total_tax": tax,
        })
        amount += total + tax
    shipping = shipping_tax = ZERO
    if order["shipping_total"] and not order.get("shipping_refunded") and (full or rng.random() < 0.3):
        shipping, shipping_tax = order["shipping_total"], order["shipping_tax"]
        order["shipping_refunded"] = True
        amount += shipping + shipping_tax
    t["woocommerce_refunds"].append({
        "refund_id": refund_id, "order_id": order["order_id"], "created_at": at, "amount": amount,
        "reason": reason, "restock": restock, "shipping_total": shipping, "shipping_tax": shipping_tax,
        "shipping_item_id": item() if shipping else None,
    })
