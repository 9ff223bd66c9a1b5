"""The US subsidiary's trade desk in the sandbox world, invoiced in Dynamics 365 Business Central.

The US company (local currency USD) invoices US trade customers directly in Business Central:
posted sales invoices (number series `USI-10001` …) at trade prices in USD, net-30/60 from the
customer's terms.  A customer buying for resale gives a certificate: its invoices carry the tax
group `RESALE` (no tax, treatment `us_resale_exempt`); goods a customer buys for its own use
(showroom fittings) are taxed at its state's rates (`TAXABLE`, `us_sales_tax`).  Freight is a
G/L account line (account 40250, not taxed), free above the trade threshold; some lines carry a
negotiated line discount.  Some invoices are cancelled after posting (BC status `Canceled`, a
corrective credit memo behind it), some edited after posting (the customer's PO reference
corrected: `lastModifiedDateTime` moves, amounts do not).  Customers pay by bank transfer,
recorded as customer payment lines against the invoice: on time, late, part then the rest, part
only, or never.  Payments are in USD; the group's home currency is GBP, so each amount converts
at the day's rate (the company's GBP exchange rates) and paying on another day than the invoice
realises FX.
"""
from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.sandbox import catalogue as cat

SHARE = 0.02
CURRENCY = "USD"
FIRST_NUMBER = 10_000
FREIGHT_ACCOUNT = "40250"
D = Decimal
ZERO = D("0.00")
CENT = D("0.01")
UTC = timezone.utc
TABLES = ("dynamics365_customers", "dynamics365_invoices", "dynamics365_invoice_lines", "dynamics365_payments")


def q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def guid(seed: int, *parts: object) -> str:
    """A stable GUID (BC's SystemId) for a world object."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"bc:{seed}:" + ":".join(map(str, parts))))


def midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def generate(world) -> dict[str, list[dict]]:
    t: dict[str, list[dict]] = {k: [] for k in TABLES}
    customers = [c for c in world.trade_customers if c["country"] == "US"]
    for c in customers:
        t["dynamics365_customers"].append({
            "customer_id": c["customer_id"], "id": guid(world.seed, "customer", c["customer_id"]),
            "display_name": c["company"], "email": c["email"], "state": c["region"], "currency": CURRENCY,
            "terms_days": c["terms_days"], "resale_certificate": c["resale_certificate"],
            "created_at": c["created_at"],
        })
    if not customers:
        return t
    number = FIRST_NUMBER
    for day, rng, expected in world.days(SHARE):
        for _ in range(world.count(rng, expected)):
            number += 1
            created = midnight(day) + timedelta(seconds=rng.randint(14 * 3600, 23 * 3600 - 1))
            _invoice(world, rng, rng.choice(customers), number, created, t)
    world.index("dynamics365_invoices", "created_at")
    world.index("dynamics365_invoice_lines", "invoice_id")
    world.index("dynamics365_payments", "invoice_id", "created_at")
    return t


def _invoice(world, rng: random.Random, customer: dict, number: int, created: datetime, t: dict) -> None:
    seed = world.seed
    invoice_id = guid(seed, "invoice", number)
    issued = created.date()
    taxable = rng.random() < 0.2  # goods for the customer's own use
    treatment = "us_sales_tax" if taxable else "us_resale_exempt"
    rates = world.tax_rates(treatment, "US", customer["region"]) if taxable else ()
    rate = sum((r for _, r in rates), D("0"))
    lines, merchandise, seq = [], ZERO, 0
    for product, qty in world.pick_lines(rng, True):
        seq += 10_000
        price = cat.trade_price(product, CURRENCY)
        gross = q(price * qty)
        discount = q(gross * D(rng.choice([5, 10])) / 100) if rng.random() < 0.25 else ZERO
        net = gross - discount
        lines.append({
            "line_id": guid(seed, "line", number, seq), "invoice_id": invoice_id, "sequence": seq,
            "line_type": "Item", "item_number": product.sku, "description": product.title, "quantity": qty,
            "unit_price": price, "discount_amount": discount, "amount": net,
            "tax_amount": sum((q(net * r) for _, r in rates), ZERO), "tax_rate": rate,
            "tax_group": "TAXABLE" if taxable else "RESALE",
            "unit_cost_gbp": world.unit_cost(product.sku, midnight(issued)),
        })
        merchandise += net
    _, _, freight, free_over = cat.SHIPPING[CURRENCY]
    if merchandise < free_over:
        seq += 10_000
        lines.append({
            "line_id": guid(seed, "line", number, seq), "invoice_id": invoice_id, "sequence": seq,
            "line_type": "Account", "item_number": FREIGHT_ACCOUNT, "description": "Freight", "quantity": 1,
            "unit_price": freight, "discount_amount": ZERO, "amount": freight, "tax_amount": ZERO,
            "tax_rate": D("0"), "tax_group": "FREIGHT", "unit_cost_gbp": None,
        })
    total = sum((ln["amount"] + ln["tax_amount"] for ln in lines), ZERO)
    due = issued + timedelta(days=customer["terms_days"])
    invoice = {
        "invoice_id": invoice_id, "number": f"USI-{number}", "customer_id": customer["customer_id"],
        "created_at": created, "invoice_date": issued, "due_date": due, "currency": CURRENCY,
        "terms_days": customer["terms_days"], "tax_treatment": treatment, "state": customer["region"],
        "your_reference": f"PO-{rng.randint(1000, 9999)}", "edited_reference": None, "edited_at": None,
        "canceled_at": None, "total": total,
    }
    t["dynamics365_invoices"].append(invoice)
    t["dynamics365_invoice_lines"].extend(lines)
    if rng.random() < 0.1:  # the customer's PO reference corrected after posting
        invoice["edited_at"] = created + timedelta(days=rng.uniform(0.5, 12))
        invoice["edited_reference"] = f"PO-{rng.randint(1000, 9999)}-A"
    if rng.random() < 0.05:  # cancelled (corrective credit memo), never paid
        invoice["canceled_at"] = created + timedelta(days=rng.uniform(1, 10))
        return
    roll = rng.random()
    pays: list[tuple[int, Decimal]] = []  # (days after the invoice, amount)
    terms = customer["terms_days"]
    if roll < 0.55:
        pays = [(rng.randint(5, terms), total)]
    elif roll < 0.75:
        pays = [(terms + rng.randint(3, 45), total)]
    elif roll < 0.85:
        part = q(total * D(rng.choice([30, 40, 50, 60])) / 100)
        pays = [(rng.randint(10, terms), part), (terms + rng.randint(10, 60), total - part)]
    elif roll < 0.9:
        pays = [(rng.randint(10, terms + 20), q(total * D(rng.choice([25, 50])) / 100))]
    n = 0
    for days, amount in pays:
        n += 1
        at = midnight(issued + timedelta(days=days)) + timedelta(seconds=rng.randint(13 * 3600, 22 * 3600))
        t["dynamics365_payments"].append({
            "payment_id": guid(seed, "payment", number, n), "invoice_id": invoice_id,
            "customer_id": customer["customer_id"], "created_at": at, "posting_date": at.date(),
            "amount": amount, "document_number": f"USPMT-{number}-{n}",
            "external_document_number": f"ACH{rng.randint(10 ** 9, 10 ** 10 - 1)}",
        })
