"""The EU trade desk in the sandbox world: trade invoices the bookkeeper raises in Zoho Books.

The organisation (Zoho Books, EU data centre, base currency GBP, time zone Europe/London) invoices
the business's trade customers in Ireland, France, Germany and the Netherlands in EUR, from their
purchase orders: net-30/60 terms from the customer's account, trade prices, trade freight under
the free-freight threshold, and EU B2B reverse charge (every such customer has a VAT number, so
the invoice carries no VAT).  Each invoice records the org's exchange rate of its date (GBP per
EUR, the world's daily rate).  Invoice numbers are the desk's own series `EU-10001 …`.

- A few invoices are voided before anything is paid (`voided_at`).
- A few are edited after issue, before any payment: a line of accessories added (`added_at` on
  the line, `edited_at` on the invoice), which moves `last_modified_time` and the totals.
- Customers pay by bank transfer, recorded by the bookkeeper as customer payments: on time, late,
  in two parts, or never; each payment carries the exchange rate of its own date, so the
  difference against the invoice's rate is realised FX.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from finance_pipeline.sandbox import catalogue as cat
from finance_pipeline.sandbox.world import business_date, day_start, q

SHARE = 0.02
COUNTRIES = ("IE", "FR", "DE", "NL")
CURRENCY = "EUR"
ORG_ID = 20_061_234_567
CONTACT_BASE = 460_000_000_026_000
INVOICE_BASE = 460_000_000_041_000
LINE_BASE = 460_000_000_052_000
PAYMENT_BASE = 460_000_000_063_000
FIRST_NUMBER = 10_000
D = Decimal
ZERO = D("0.00")
UTC = timezone.utc
VAT_TREATMENT = {"eu_reverse_charge": "eu_vat_registered", "uk_vat": "uk", "export_zero_rated": "overseas",
                 "us_resale_exempt": "overseas"}


class _Seq:
    def __init__(self, start: int) -> None:
        self.n = start

    def __call__(self) -> int:
        self.n += 1
        return self.n


def customers(world) -> list[dict]:
    """The desk's customers: the business's trade accounts in the four EU countries."""
    return [c for c in world.trade_customers if c["country"] in COUNTRIES]


def generate(world) -> dict[str, list[dict]]:
    t: dict[str, list[dict]] = {k: [] for k in (
        "zoho_books_contacts", "zoho_books_invoices", "zoho_books_invoice_lines", "zoho_books_payments")}
    pool = customers(world) or [c for c in world.trade_customers if c["currency"] == CURRENCY] \
        or world.trade_customers[:1]
    contact_of: dict[str, int] = {}
    for n, c in enumerate(pool, 1):
        contact_of[c["customer_id"]] = CONTACT_BASE + n * 11
        t["zoho_books_contacts"].append({
            "contact_id": contact_of[c["customer_id"]], "contact_number": c["customer_id"],
            "contact_name": c["company"], "company_name": c["company"], "email": c["email"],
            "country": c["country"], "currency_code": c["currency"], "vat_number": c["vat_number"],
            "payment_terms": c["terms_days"], "created_at": c["created_at"],
        })
    seq = {"invoice": _Seq(0), "line": _Seq(0), "payment": _Seq(0)}
    for day, rng, expected in world.days(SHARE):
        for _ in range(world.count(rng, expected)):
            created = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                seconds=rng.randint(8 * 3600, 18 * 3600))
            _invoice(world, rng, created, rng.choice(pool), contact_of, seq, t)
    world.index("zoho_books_invoices", "invoice_id", "created_at")
    world.index("zoho_books_invoice_lines", "invoice_id")
    world.index("zoho_books_payments", "invoice_id", "created_at")
    return t


def _line(world, rng: random.Random, inv: dict, product: cat.Product, qty: int, pos: int, seq: dict,
          added_at: datetime | None, rates: tuple) -> dict:
    price = cat.trade_price(product, inv["currency_code"])
    total = price * qty
    rate = sum((r for _, r in rates), ZERO)
    return {
        "line_item_id": LINE_BASE + seq["line"]() * 7, "invoice_id": inv["invoice_id"], "item_order": pos,
        "sku": product.sku, "name": product.title, "unit": "per 10 cm" if product.unit == "10cm" else "pcs",
        "rate": price, "quantity": qty, "discount": ZERO, "item_total": total,
        "tax_percentage": rate * 100, "tax_amount": sum((q(total * r) for _, r in rates), ZERO),
        "added_at": added_at, "unit_cost_gbp": world.unit_cost(product.sku, inv["created_at"]),
    }


def _invoice(world, rng: random.Random, created: datetime, customer: dict, contact_of: dict, seq: dict,
             t: dict) -> None:
    n = seq["invoice"]()
    currency = customer["currency"]
    treatment = world.tax_treatment(customer["country"], trade=True)
    rates = world.tax_rates(treatment, customer["country"], customer["region"])
    terms = customer["terms_days"] or 30
    issued = business_date(created)
    inv = {
        "invoice_id": INVOICE_BASE + n * 13, "invoice_number": f"EU-{FIRST_NUMBER + n}",
        "contact_id": contact_of[customer["customer_id"]], "customer_id": customer["customer_id"],
        "customer_name": customer["company"], "email": customer["email"], "country": customer["country"],
        "currency_code": currency, "exchange_rate": world.fx_rate(currency, created),
        "tax_treatment": treatment, "vat_treatment": VAT_TREATMENT.get(treatment, "overseas"),
        "tax_reg_no": customer["vat_number"], "payment_terms": terms, "date": issued,
        "due_date": issued + timedelta(days=terms), "created_at": created,
        "reference_number": f"PO-{rng.randint(10000, 99999)}", "voided_at": None, "edited_at": None,
        "tax_rate": sum((r for _, r in rates), ZERO),
    }
    lines = [_line(world, rng, inv, p, qty, i, seq, None, rates)
             for i, (p, qty) in enumerate(world.pick_lines(rng, True), 1)]
    merchandise = sum((line["item_total"] for line in lines), ZERO)
    _, _, freight, freight_free = cat.SHIPPING[currency]
    inv["shipping_charge"] = ZERO if merchandise >= freight_free else freight
    inv["shipping_tax"] = sum((q(inv["shipping_charge"] * r) for _, r in rates), ZERO)
    t["zoho_books_invoices"].append(inv)
    t["zoho_books_invoice_lines"].extend(lines)
    if rng.random() < 0.05:  # raised in error and voided before any payment
        inv["voided_at"] = (created + timedelta(hours=rng.uniform(2, 72))).replace(microsecond=0)
        return
    roll = rng.random()
    due = day_start(inv["due_date"])
    if roll < 0.55:
        plan = [(None, created + timedelta(days=rng.uniform(3, terms)))]
    elif roll < 0.75:
        plan = [(None, due + timedelta(days=rng.uniform(2, 45)))]
    elif roll < 0.88:
        plan = [(D(rng.randint(30, 70)) / 100, created + timedelta(days=rng.uniform(5, terms))),
                (None, due + timedelta(days=rng.uniform(10, 80)))]
    else:
        plan = []  # never pays
    if rng.random() < 0.08:  # edited after issue, before any payment: a line added
        at = (created + timedelta(days=rng.uniform(0.5, 2.5))).replace(microsecond=0)
        if not plan or at < plan[0][1]:
            product = rng.choice(cat.ACCESSORIES)
            lines.append(_line(world, rng, inv, product, rng.randint(5, 30), len(lines) + 1, seq, at, rates))
            t["zoho_books_invoice_lines"].append(lines[-1])
            inv["edited_at"] = at
    total = (sum((line["item_total"] + line["tax_amount"] for line in lines), ZERO)
             + inv["shipping_charge"] + inv["shipping_tax"])
    paid = ZERO
    for part, when in plan:
        when = when.replace(microsecond=0)
        amount = q(total * part) if part is not None else total - paid
        if amount <= 0:
            continue
        m = seq["payment"]()
        t["zoho_books_payments"].append({
            "payment_id": PAYMENT_BASE + m * 17, "payment_number": str(m), "invoice_id": inv["invoice_id"],
            "contact_id": inv["contact_id"], "customer_id": inv["customer_id"], "created_at": when,
            "date": business_date(when), "amount": amount, "currency_code": currency,
            "exchange_rate": world.fx_rate(currency, when), "payment_mode": "banktransfer",
            "reference_number": f"SEPA-{rng.randint(10 ** 9, 10 ** 10 - 1)}",
        })
        paid += amount
