"""The Magento (Adobe Commerce) store in the sandbox world: the UK retail web shop, in GBP.

The store (`curtains-uk.example`, Magento 2.4.8, Europe/London, base and display currency GBP)
sells to retail buyers in Great Britain at the GBP list prices; catalogue prices include VAT
(20 %), discounts apply to the VAT-inclusive price.  Payment goes through the store's gateways
(Braintree card, PayPal Express), captured when the order is placed (invoiced at once).
A redirect payment that fails leaves the order `canceled` with nothing paid (no revenue).
Paid orders become `complete` when shipped; some are refunded in full before shipping (a credit
memo; the order `closed`), some partly refunded later (credit memos with items and maybe the
shipping), a few months later, and a few orders edited later (address corrected, a comment),
which moves `updated_at`.  Returned goods are checked by the warehouse outside Magento and are
never put back in stock through the credit memo (`return_to_stock_items` is not used), so a
credit memo reverses no cost of goods.

Amounts are what Magento records: item `price_incl_tax`, `row_total_incl_tax`, `discount_amount`
(VAT-inclusive, positive on items), `tax_amount` (after discount), `row_total` (ex tax, before
discount); shipping `shipping_incl_tax` with its `shipping_tax_amount`.
"""
from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.sandbox import catalogue as cat

SHARE = 0.08
CURRENCY = "GBP"
FIRST_ORDER = 4_100  # entity_id; increment_id is 000004101 …
FIRST_ITEM = 9_200
FIRST_MEMO = 310
D = Decimal
ZERO = D("0.00")
CENT = D("0.01")
UTC = timezone.utc


def q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def incl_tax(amount: Decimal, rate: Decimal) -> Decimal:
    return q(amount * rate / (1 + rate))


class _Seq:
    def __init__(self, start: int) -> None:
        self.n = start

    def __call__(self) -> int:
        self.n += 1
        return self.n


def generate(world) -> dict[str, list[dict]]:
    t: dict[str, list[dict]] = {k: [] for k in (
        "magento_orders", "magento_order_items", "magento_creditmemos", "magento_creditmemo_items")}
    seq = {"order": _Seq(FIRST_ORDER), "item": _Seq(FIRST_ITEM), "memo": _Seq(FIRST_MEMO), "memo_item": _Seq(20_000)}
    for day, rng, expected in world.days(SHARE):
        for _ in range(world.count(rng, expected)):
            created = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                seconds=rng.randint(6 * 3600, 23 * 3600 - 1))
            _order(world, rng, created, seq, t)
    world.index("magento_orders", "entity_id", "created_at")
    world.index("magento_order_items", "order_id")
    world.index("magento_creditmemos", "order_id", "created_at")
    world.index("magento_creditmemo_items", "creditmemo_id")
    return t


def _order(world, rng: random.Random, created: datetime, seq: dict, t: dict) -> None:
    customer = world.retail_customer(rng, ("GB",))
    (tax_title, rate), = world.tax_rates("uk_vat", "GB", None)
    entity_id = seq["order"]()
    coupon, pct = (rng.choice(cat.DISCOUNT_CODES) if rng.random() < 0.15 else (None, None))
    method = "braintree" if rng.random() < 0.75 else "paypal_express"
    order = {
        "entity_id": entity_id, "increment_id": f"{entity_id + 1:09d}", "customer_id": customer["customer_id"],
        "mage_customer_id": (500 + int(customer["customer_id"][1:])) if rng.random() < 0.6 else None,
        "firstname": customer["first_name"], "lastname": customer["last_name"], "email": customer["email"],
        "country": "GB", "currency": CURRENCY, "tax_rate": rate, "tax_title": tax_title,
        "coupon_code": coupon, "coupon_pct": pct, "payment_method": method,
        "created_at": created, "paid_at": None, "canceled_at": None, "shipped_at": None, "edited_at": None,
        "txn_id": None,
    }
    items = []
    for product, qty in world.pick_lines(rng, False):
        price = cat.market_price(product, CURRENCY)
        row_incl = price * qty
        discount = q(row_incl * pct) if pct else ZERO
        items.append({
            "item_id": seq["item"](), "order_id": entity_id, "product_id": 300 + cat.PRODUCTS.index(product),
            "sku": product.sku, "name": product.title, "qty": qty, "price_incl_tax": price,
            "row_total_incl_tax": row_incl, "row_total": row_incl - incl_tax(row_incl, rate),
            "discount_amount": discount, "tax_amount": incl_tax(row_incl - discount, rate),
            "unit_cost_gbp": world.unit_cost(product.sku, created),
        })
    merchandise = sum((i["row_total_incl_tax"] - i["discount_amount"] for i in items), ZERO)
    std, free_over, _, _ = cat.SHIPPING[CURRENCY]
    order["shipping_incl_tax"] = ZERO if merchandise >= free_over else std
    order["shipping_tax"] = incl_tax(order["shipping_incl_tax"], rate)
    order["grand_total"] = merchandise + order["shipping_incl_tax"]
    t["magento_orders"].append(order)
    t["magento_order_items"].extend(items)

    settle = created + timedelta(seconds=rng.randint(5, 120))
    if method == "paypal_express" and rng.random() < 0.08:  # the buyer never completed PayPal
        order["canceled_at"] = created + timedelta(minutes=rng.randint(30, 180))
        return
    if method == "braintree" and rng.random() < 0.02:  # 3-D Secure failed after the order was placed
        order["canceled_at"] = settle + timedelta(seconds=5)
        return
    order["paid_at"] = settle
    order["txn_id"] = hashlib.blake2b(f"{world.seed}:mg:{entity_id}".encode(), digest_size=4).hexdigest() \
        if method == "braintree" else f"{entity_id:08d}PP{rng.randint(10 ** 7, 10 ** 8 - 1)}"
    remaining = {i["item_id"]: i["qty"] for i in items}
    roll = rng.random()
    if roll < 0.02:
        _memo(rng, order, items, remaining, created + timedelta(hours=rng.uniform(1, 20)), seq, t, full=True)
        return
    order["shipped_at"] = created + timedelta(hours=rng.uniform(18, 90))
    if roll < 0.09:
        _memo(rng, order, items, remaining, order["shipped_at"] + timedelta(days=rng.uniform(2, 25)), seq, t)
    if rng.random() < 0.012:
        _memo(rng, order, items, remaining, created + timedelta(days=rng.uniform(60, 120)), seq, t)
    if rng.random() < 0.03:
        order["edited_at"] = created + timedelta(days=rng.uniform(7, 30), seconds=rng.randint(0, 3600))


def _memo(rng: random.Random, order: dict, items: list[dict], remaining: dict[int, int], at: datetime,
          seq: dict, t: dict, full: bool = False) -> None:
    candidates = [i for i in items if remaining[i["item_id"]] > 0]
    if not candidates:
        return
    if full:
        picks = [(i, remaining[i["item_id"]]) for i in candidates]
    else:
        item = rng.choice(candidates)
        left = remaining[item["item_id"]]
        picks = [(item, rng.randint(1, left) if left > 1 else 1)]
    memo_id = seq["memo"]()
    total = ZERO
    for item, qty in picks:
        done = item["qty"] - remaining[item["item_id"]]
        remaining[item["item_id"]] -= qty

        def part(name: str) -> Decimal:
            if remaining[item["item_id"]] == 0:
                return item[name] - q(item[name] * done / item["qty"])
            return q(item[name] * qty / item["qty"])

        row_incl, discount, tax = part("row_total_incl_tax"), part("discount_amount"), part("tax_amount")
        t["magento_creditmemo_items"].append({
            "entity_id": seq["memo_item"](), "creditmemo_id": memo_id, "order_id": order["entity_id"],
            "order_item_id": item["item_id"], "sku": item["sku"], "qty": qty, "row_total_incl_tax": row_incl,
            "discount_amount": discount, "tax_amount": tax,
        })
        total += row_incl - discount
    shipping_incl = shipping_tax = ZERO
    if order["shipping_incl_tax"] and not order.get("shipping_refunded") and (full or rng.random() < 0.3):
        shipping_incl, shipping_tax = order["shipping_incl_tax"], order["shipping_tax"]
        order["shipping_refunded"] = True
    t["magento_creditmemos"].append({
        "entity_id": memo_id, "increment_id": f"{memo_id:09d}", "order_id": order["entity_id"], "created_at": at,
        "shipping_incl_tax": shipping_incl, "shipping_tax": shipping_tax, "grand_total": total + shipping_incl,
    })
