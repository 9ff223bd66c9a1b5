"""The Manchester showroom's Lightspeed Retail (R-Series) till, from the channel's own streams.

Walk-in retail, Monday to Saturday 10:00-17:30 Europe/London, GBP, VAT-inclusive catalogue
prices (`isTaxInclusive`, tax1 = UK VAT 20 %).  In Lightspeed's terms:

- a Sale per ticket with its SaleLines and SalePayments (Cash, or Credit Card through the
  integrated terminal); a few customers are on file, most are walk-ins (customerID 0);
- some tickets are voided before payment (`voided`, no payments, no revenue);
- a customer attached to an old sale later (an edit: the sale's `timeStamp` moves);
- returns are their own Sale with negative quantities (each line naming the sold line in
  `parentSaleLineID`) and a negative payment in the original tender; returned goods are restocked.

The Retail API exposes no card fees or payouts (Lightspeed Payments reports those elsewhere), so
the world records none.  Ids are numeric strings derived from the day, so a longer horizon
only appends rows.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from finance_pipeline.sandbox import catalogue as cat
from finance_pipeline.sandbox.world import ChannelWorld, q

UTC = timezone.utc
LONDON = ZoneInfo("Europe/London")
D = Decimal
SHARE = 0.06
OPEN_AT, CLOSE_AT = time(10), time(17, 30)
VAT = D("0.20")
CURRENCY = "GBP"
PAYMENT_TYPES = {"1": "Cash", "7": "Credit Card"}


def item_id(sku: str) -> str:
    return str(1000 + [p.sku for p in cat.PRODUCTS].index(sku))


def _moment(rng, d: date) -> datetime:
    span = int((datetime.combine(d, CLOSE_AT) - datetime.combine(d, OPEN_AT)).total_seconds())
    start = datetime.combine(d, OPEN_AT, tzinfo=LONDON).astimezone(UTC)
    return start + timedelta(seconds=rng.randint(0, span - 1))


def _share(total: Decimal, part: int, whole: int) -> Decimal:
    return (total * part / whole).quantize(D("0.01"), rounding=ROUND_HALF_UP)


def generate(world: ChannelWorld) -> dict[str, list[dict[str, Any]]]:
    t: dict[str, list[dict[str, Any]]] = {"lightspeed_sales": [], "lightspeed_sale_lines": [],
                                          "lightspeed_sale_payments": [], "lightspeed_items": []}
    for p in cat.PRODUCTS:
        t["lightspeed_items"].append({"item_id": item_id(p.sku), "sku": p.sku, "description": p.title,
                                      "system_sku": f"2100000{item_id(p.sku)}", "price": cat.market_price(p, CURRENCY)})
    world.index("lightspeed_sales", "sale_id", "time_stamp")
    world.index("lightspeed_sale_lines", "sale_id")
    world.index("lightspeed_sale_payments", "sale_id")
    for d, rng, expected in world.days(SHARE):
        if d.weekday() == 6:
            continue
        moments = sorted(_moment(rng, d) for _ in range(world.count(rng, expected * 7 / 6)))
        for i, created in enumerate(moments):
            _sale(world, t, rng, d, i, created)
    return t


def _sale(world: ChannelWorld, t: dict, rng, d: date, i: int, created: datetime) -> None:
    base = d.toordinal() * 1000 + i  # numeric ids, stable per day
    sale_id = str(base)
    customer = world.retail_customer(rng, ("GB",)) if rng.random() < 0.12 else None
    customer_id = str(int(customer["customer_id"][1:])) if customer else "0"
    voided = rng.random() < 0.02
    completed = created + timedelta(seconds=rng.randint(30, 240))
    lines = []
    for n, (product, qty) in enumerate(world.pick_lines(rng, False)):
        price = cat.market_price(product, CURRENCY)
        discount = q(price * qty * D("0.05")) if rng.random() < 0.07 else D("0.00")
        total = price * qty - discount
        tax = q(total * VAT / (1 + VAT))
        lines.append({
            "sale_line_id": str(base * 10 + n), "sale_id": sale_id, "item_id": item_id(product.sku),
            "sku": product.sku, "quantity": qty, "unit_price": price, "discount": discount, "subtotal": total,
            "tax1": tax, "total": total, "tax1_rate": VAT, "parent_sale_line_id": None, "created_at": created,
            "unit_cost_gbp": world.unit_cost(product.sku, created),
        })
    total = sum((line["total"] for line in lines), D("0.00"))
    edited = None
    if not voided and rng.random() < 0.06:  # customer details added to the ticket days later
        edited = completed + timedelta(days=rng.randint(2, 40), seconds=rng.randint(0, 3600))
        late_customer = world.retail_customer(rng, ("GB",))
        customer_id_late = str(int(late_customer["customer_id"][1:]))
    else:
        customer_id_late = None
    tender = "1" if total < 300 and rng.random() < 0.3 else "7"
    t["lightspeed_sales"].append({
        "sale_id": sale_id, "kind": "sale", "created_at": created, "completed_at": completed,
        "voided": voided, "customer_id": customer_id, "late_customer_id": customer_id_late, "edited_at": edited,
        "time_stamp": max(x for x in (created, completed, edited) if x is not None) if not voided else completed,
        "ticket_number": f"22{base:010d}", "register_id": "1", "shop_id": "1", "employee_id": str(rng.randint(1, 4)),
        "total": total, "tax1": sum((line["tax1"] for line in lines), D("0.00")),
        "discount": sum((line["discount"] for line in lines), D("0.00")), "returned_sale_id": None,
    })
    t["lightspeed_sale_lines"].extend(lines)
    if voided:
        return
    t["lightspeed_sale_payments"].append({
        "sale_payment_id": str(base * 10), "sale_id": sale_id, "payment_type_id": tender,
        "payment_type": PAYMENT_TYPES[tender], "amount": total, "created_at": completed - timedelta(seconds=5),
    })
    if rng.random() < 0.06:  # brought back within a fortnight
        line = rng.choice(lines)
        qty = rng.randint(1, line["quantity"])
        back = _moment(rng, d + timedelta(days=rng.randint(1, 14)))
        if back.astimezone(LONDON).weekday() == 6:
            back += timedelta(days=1)
        rid = str(base + 500)  # return tickets: the upper half of the day's id block
        rtotal = _share(line["total"], qty, line["quantity"])
        rtax = _share(line["tax1"], qty, line["quantity"])
        rdisc = _share(line["discount"], qty, line["quantity"])
        t["lightspeed_sale_lines"].append({
            "sale_line_id": str(int(rid) * 10), "sale_id": rid, "item_id": line["item_id"], "sku": line["sku"],
            "quantity": -qty, "unit_price": line["unit_price"], "discount": -rdisc, "subtotal": -rtotal,
            "tax1": -rtax, "total": -rtotal, "tax1_rate": VAT, "parent_sale_line_id": line["sale_line_id"],
            "created_at": back, "unit_cost_gbp": line["unit_cost_gbp"],
        })
        t["lightspeed_sales"].append({
            "sale_id": rid, "kind": "return", "created_at": back, "completed_at": back + timedelta(seconds=60),
            "voided": False, "customer_id": customer_id, "late_customer_id": None, "edited_at": None,
            "time_stamp": back + timedelta(seconds=60), "ticket_number": f"22{int(rid):010d}", "register_id": "1",
            "shop_id": "1", "employee_id": "1", "total": -rtotal, "tax1": -rtax, "discount": -rdisc,
            "returned_sale_id": sale_id,
        })
        t["lightspeed_sale_payments"].append({
            "sale_payment_id": str(int(rid) * 10), "sale_id": rid, "payment_type_id": tender,
            "payment_type": PAYMENT_TYPES[tender], "amount": -rtotal, "created_at": back + timedelta(seconds=55),
        })
