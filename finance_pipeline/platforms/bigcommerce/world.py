"""The BigCommerce store in the sandbox world: the business's US storefront, selling in US dollars.

The store (`curtains-us.example`, store hash `sbx1234567`, America/New_York) sells to US
consumers at the USD list prices, ex tax; BigCommerce's tax engine adds the state's sales tax
(state + county/city components of `catalogue.US_STATE_TAX`) on goods after the coupon and on
shipping, so the tax is a liability to the buyer's state (scenario S9).  The store's default
currency is GBP (the business's home currency) and USD is its transactional currency
(BigCommerce multi-currency): every order records `store_default_to_transactional_exchange_rate`,
US dollars per pound on the day, which is how the pipeline converts to GBP.

Payment is a card captured at checkout through BigCommerce Payments (`bigcommerce_payments`) or
PayPal (`paypalcommerce`): a `purchase` transaction.  Some cards are declined (order status
Declined, a failed `purchase`, no revenue).  Paid orders ship (Shipped); some are cancelled within
hours and refunded in full, shipping included (Cancelled); some are partly refunded weeks later
(status Partially Refunded, maybe with the shipping), a few months later, and a few edited later
(staff notes), which moves `date_modified`.  Every refund is a `refund` transaction on the same
gateway.  Refunds never put goods back in stock (returns are inspected outside BigCommerce), so
they reverse no cost of goods.  No payouts: the gateways' balances are not in BigCommerce's API.

Amounts are what BigCommerce records: product `price_ex_tax` (unit), `total_ex_tax` (unit ×
quantity, before the coupon), the coupon as the line's `applied_discounts`, `total_tax` on the
discounted amount; order `subtotal_ex_tax`, `discount_amount`, `shipping_cost_ex_tax` and their tax.
Refund rows carry goods (ex tax), shipping (ex tax) and tax separately, all positive.
"""
from __future__ import annotations

import hashlib
import itertools
import random
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.sandbox import catalogue as cat
from finance_pipeline.sandbox.world import q

SHARE = 0.07  # of the Shopify volume
CURRENCY = "USD"
STORE_TIMEZONE = "America/New_York"
STORE_HASH = "sbx1234567"
FIRST_ORDER = 100  # BigCommerce order ids start at 100
FIRST_PRODUCT_ROW = 5_000  # order product ids
FIRST_REFUND = 0
FIRST_TXN = 0
GATEWAYS = (("bigcommerce_payments", "Credit Card", 0.8), ("paypalcommerce", "PayPal", 0.2))
D = Decimal
ZERO = D("0.00")
RATE = D("0.000001")
UTC = timezone.utc


def later(at: datetime, **delta: float) -> datetime:
    """`at` + delta in whole seconds: V2 and V3 dates carry no fractions."""
    return (at + timedelta(**delta)).replace(microsecond=0)


def generate(world) -> dict[str, list[dict]]:
    t: dict[str, list[dict]] = {k: [] for k in (
        "bigcommerce_orders", "bigcommerce_order_products", "bigcommerce_refunds", "bigcommerce_refund_items",
        "bigcommerce_transactions")}
    seq = {"order": itertools.count(FIRST_ORDER).__next__, "product": itertools.count(FIRST_PRODUCT_ROW + 1).__next__,
           "refund": itertools.count(FIRST_REFUND + 1).__next__, "txn": itertools.count(FIRST_TXN + 1).__next__}
    for day, rng, expected in world.days(SHARE):
        for _ in range(world.count(rng, expected)):
            created = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                seconds=rng.randint(11 * 3600, 23 * 3600 + 3599))  # US daytime
            _order(world, rng, created, seq, t)
    world.index("bigcommerce_orders", "order_id", "created_at")
    world.index("bigcommerce_order_products", "order_id")
    world.index("bigcommerce_refunds", "order_id", "created_at")
    world.index("bigcommerce_refund_items", "refund_id")
    world.index("bigcommerce_transactions", "order_id", "created_at")
    return t


def _txn(world, seq: dict, t: dict, order: dict, event: str, amount: Decimal, at: datetime, status: str = "ok",
         refund_id: int | None = None) -> None:
    n = seq["txn"]()
    digest = hashlib.blake2b(f"{world.seed}:bc:{n}".encode(), digest_size=12).hexdigest()
    gateway_txn = f"ch_3{digest[:21]}" if order["gateway"] == "bigcommerce_payments" else digest[:17].upper()
    t["bigcommerce_transactions"].append({
        "transaction_id": n, "order_id": order["order_id"], "event": event, "gateway": order["gateway"],
        "payment_method_id": order["payment_method_id"], "amount": amount, "currency": CURRENCY, "status": status,
        "gateway_transaction_id": gateway_txn, "created_at": at, "refund_id": refund_id,
        "avs_result": "Y" if status == "ok" else "N", "card_type": order["card_type"], "card_last4": order["card_last4"],
    })


def _order(world, rng: random.Random, created: datetime, seq: dict, t: dict) -> None:
    customer = world.retail_customer(rng, ("US",))
    region = customer["region"]
    components = world.tax_rates("us_sales_tax", "US", region)
    rate = sum((r for _, r in components), D(0))
    order_id = seq["order"]()
    coupon, pct = (rng.choice(cat.DISCOUNT_CODES) if rng.random() < 0.12 else (None, None))
    roll = rng.random()
    gateway, method = next((g, m) for g, m, p in _cumulative() if roll < p)
    order = {
        "order_id": order_id, "customer_id": customer["customer_id"],
        "bc_customer_id": (20 + int(customer["customer_id"][1:])) if rng.random() < 0.7 else 0,
        "first_name": customer["first_name"], "last_name": customer["last_name"], "email": customer["email"],
        "country": "US", "region": region, "currency": CURRENCY,
        "exchange_rate": (1 / world.fx_rate(CURRENCY, created)).quantize(RATE, rounding=ROUND_HALF_UP),
        "tax_rate": rate, "tax_names": ", ".join(name for name, _ in components),
        "coupon_code": coupon, "coupon_pct": pct, "gateway": gateway, "payment_method": method,
        "payment_method_id": "bigcommerce_payments.card" if gateway == "bigcommerce_payments" else "paypalcommerce.paypal",
        "card_type": rng.choice(("visa", "mastercard", "amex")) if gateway == "bigcommerce_payments" else None,
        "card_last4": f"{rng.randint(0, 9999):04d}" if gateway == "bigcommerce_payments" else None,
        "created_at": created, "paid_at": None, "declined_at": None, "shipped_at": None, "cancelled_at": None,
        "edited_at": None, "staff_notes": None,
    }
    products = []
    for product, qty in world.pick_lines(rng, False):
        price = cat.market_price(product, CURRENCY)
        listed = price * qty
        discount = q(listed * pct) if pct else ZERO
        products.append({
            "product_row_id": seq["product"](), "order_id": order_id, "product_id": 700 + cat.PRODUCTS.index(product),
            "sku": product.sku, "name": product.title, "quantity": qty, "price_ex_tax": price,
            "total_ex_tax": listed, "discount": discount, "total_tax": q((listed - discount) * rate),
            "unit_cost_gbp": world.unit_cost(product.sku, created),
        })
    merchandise = sum((p["total_ex_tax"] - p["discount"] for p in products), ZERO)
    std, free_over, _, _ = cat.SHIPPING[CURRENCY]
    order["shipping_ex_tax"] = ZERO if merchandise >= free_over else std
    order["shipping_tax"] = q(order["shipping_ex_tax"] * rate)
    order["subtotal_ex_tax"] = sum((p["total_ex_tax"] for p in products), ZERO)
    order["discount_amount"] = sum((p["discount"] for p in products), ZERO)
    order["subtotal_tax"] = sum((p["total_tax"] for p in products), ZERO)
    order["total_ex_tax"] = merchandise + order["shipping_ex_tax"]
    order["total_tax"] = order["subtotal_tax"] + order["shipping_tax"]
    order["total_inc_tax"] = order["total_ex_tax"] + order["total_tax"]
    t["bigcommerce_orders"].append(order)
    t["bigcommerce_order_products"].extend(products)

    settle = created + timedelta(seconds=rng.randint(3, 40))
    if rng.random() < 0.04:  # the card was declined: the order stays Declined, no revenue
        order["declined_at"] = settle
        _txn(world, seq, t, order, "purchase", order["total_inc_tax"], settle, status="error")
        return
    order["paid_at"] = settle
    _txn(world, seq, t, order, "purchase", order["total_inc_tax"], settle)
    remaining = {p["product_row_id"]: p["quantity"] for p in products}
    roll = rng.random()
    if roll < 0.025:  # cancelled before shipping: refunded in full, shipping included
        at = later(created, hours=rng.uniform(1, 20))
        order["cancelled_at"] = at
        _refund(world, rng, order, products, remaining, at, seq, t, full=True, reason="Cancelled by customer")
        return
    order["shipped_at"] = later(created, hours=rng.uniform(20, 96))
    if roll < 0.10:
        _refund(world, rng, order, products, remaining, later(order["shipped_at"], days=rng.uniform(2, 25)),
                seq, t, reason=rng.choice(("Damaged in transit", "Wrong size", "Changed mind")))
    if rng.random() < 0.015:
        _refund(world, rng, order, products, remaining, later(created, days=rng.uniform(60, 120)), seq, t,
                reason="Late return")
    if rng.random() < 0.03:
        order["edited_at"] = later(created, days=rng.uniform(7, 30), seconds=rng.randint(0, 3600))
        order["staff_notes"] = "Delivery address corrected by customer service"


def _cumulative() -> list[tuple[str, str, float]]:
    out, acc = [], 0.0
    for gateway, method, p in GATEWAYS:
        acc += p
        out.append((gateway, method, acc))
    out[-1] = (out[-1][0], out[-1][1], 1.01)
    return out


def _refund(world, rng: random.Random, order: dict, products: list[dict], remaining: dict[int, int],
            at: datetime, seq: dict, t: dict, full: bool = False, reason: str = "") -> None:
    candidates = [p for p in products if remaining[p["product_row_id"]] > 0]
    if not candidates:
        return
    if full:
        picks = [(p, remaining[p["product_row_id"]]) for p in candidates]
    else:
        line = rng.choice(candidates)
        left = remaining[line["product_row_id"]]
        picks = [(line, rng.randint(1, left) if left > 1 else 1)]
    refund_id = seq["refund"]()
    goods = tax = ZERO
    for p, qty in picks:
        pid = p["product_row_id"]
        already = p["quantity"] - remaining[pid]
        remaining[pid] -= qty
        net = p["total_ex_tax"] - p["discount"]
        if remaining[pid] == 0:  # the last units take what is left, so a line never over-refunds
            amount = net - q(net * already / p["quantity"])
            item_tax = p["total_tax"] - q(p["total_tax"] * already / p["quantity"])
        else:
            amount, item_tax = q(net * qty / p["quantity"]), q(p["total_tax"] * qty / p["quantity"])
        t["bigcommerce_refund_items"].append({
            "refund_id": refund_id, "order_id": order["order_id"], "item_type": "PRODUCT", "item_id": pid,
            "quantity": qty, "amount": amount, "tax": item_tax,
        })
        goods += amount
        tax += item_tax
    shipping = ZERO
    if order["shipping_ex_tax"] and not order.get("shipping_refunded") and (full or rng.random() < 0.3):
        shipping = order["shipping_ex_tax"]
        tax += order["shipping_tax"]
        order["shipping_refunded"] = True
        t["bigcommerce_refund_items"].append({
            "refund_id": refund_id, "order_id": order["order_id"], "item_type": "SHIPPING",
            "item_id": order["order_id"], "quantity": None, "amount": shipping, "tax": order["shipping_tax"],
        })
    total = goods + shipping + tax
    t["bigcommerce_refunds"].append({
        "refund_id": refund_id, "order_id": order["order_id"], "created_at": at, "reason": reason,
        "goods_amount": goods, "shipping_amount": shipping, "tax_amount": tax, "total_amount": total,
    })
    _txn(world, seq, t, order, "refund", total, at + timedelta(seconds=2), refund_id=refund_id)
