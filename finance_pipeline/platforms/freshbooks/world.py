"""The FreshBooks account in the sandbox world: the making-up and fitting service.

Curtains made to measure in the workroom and fitted on site for trade customers (interior
designers, hotels, contract furnishers), invoiced by the bookkeeper directly in FreshBooks —
mostly UK customers in GBP, some in Ireland, France, Germany and the Netherlands in EUR.

An invoice has the fabric and lining the workroom supplies (catalogue goods at trade prices,
COGS from the catalogue) and the services: making-up per width and fitting per hour (no SKU,
category `services`, no COGS).  No delivery charge: the fitters bring the curtains.  Tax is
per line as FreshBooks keeps it (`taxName1` / `taxAmount1` percent): UK VAT at 20 %, EU trade
customers reverse charge (no tax line).  Terms are the customer's (net 30 / 60).

After issue: a few invoices are voided (deleted in FreshBooks, `vis_state` 1), a few edited
(notes changed, `updated` moves).  Customers pay by bank transfer: on time, late, in two parts,
or never.  A EUR invoice carries the sterling rate of its date in its notes (the workroom
shows sterling equivalents on every foreign-currency invoice); a EUR payment's note carries
the sterling the bank credited on the day it arrived (another day's rate: realised FX).
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.sandbox import catalogue as cat
from finance_pipeline.sandbox.world import business_date

SHARE = 0.025  # of the Shopify volume: about 50 invoices in a 2,000-order world
COUNTRIES = ("GB", "IE", "FR", "DE", "NL")
FIRST_INVOICE_ID = 480_000
FIRST_LINE_ID = 1
FIRST_PAYMENT_ID = 92_000
FIRST_CLIENT_ID = 310_000
FIRST_NUMBER = 1001
# services per unit, GBP list (EUR by the catalogue's market multiplier)
SERVICES = (("Making up, lined curtains", "per width", Decimal("38.00"), (2, 14)),
            ("Making up, interlined curtains", "per width", Decimal("52.00"), (2, 10)),
            ("Fitting on site", "per hour", Decimal("45.00"), (1, 8)))
D = Decimal
ZERO = D("0.00")
CENT = D("0.01")
UTC = timezone.utc


def q(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def invoice_number(n: int) -> str:
    """FreshBooks' own invoice number (digits, zero-padded as FreshBooks numbers them)."""
    return f"{n:07d}"


def order_number(fb_number: str) -> str:
    """The pipeline's order number for a FreshBooks invoice: a prefix of this channel's own."""
    return f"FB-{fb_number}"


def service_price(gbp: Decimal, currency: str) -> Decimal:
    return q(gbp * cat.MARKET_MULTIPLIER[currency])


def generate(world) -> dict[str, list[dict]]:
    t: dict[str, list[dict]] = {k: [] for k in (
        "freshbooks_clients", "freshbooks_invoices", "freshbooks_invoice_lines", "freshbooks_payments")}
    customers = [c for c in world.trade_customers if c["country"] in COUNTRIES]
    weights = [8 if c["country"] == "GB" else 3 for c in customers]
    clients: dict[str, dict] = {}
    seq = {"invoice": FIRST_INVOICE_ID, "line": FIRST_LINE_ID, "payment": FIRST_PAYMENT_ID,
           "number": FIRST_NUMBER}
    for day, rng, expected in world.days(SHARE):
        for _ in range(world.count(rng, expected)):
            customer = rng.choices(customers, weights)[0]
            created = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                seconds=rng.randint(8 * 3600, 18 * 3600))
            client = clients.get(customer["customer_id"])
            if client is None:
                client = _client(customer, created - timedelta(minutes=rng.randint(5, 600)), len(clients))
                clients[customer["customer_id"]] = client
                t["freshbooks_clients"].append(client)
            _invoice(world, rng, customer, client, created, seq, t)
    world.index("freshbooks_invoices", "invoice_id", "created_at")
    world.index("freshbooks_invoice_lines", "invoice_id")
    world.index("freshbooks_payments", "invoice_id", "paid_at")
    return t


def _client(customer: dict, created: datetime, n: int) -> dict:
    return {
        "client_id": FIRST_CLIENT_ID + 7 * n, "customer_id": customer["customer_id"],
        "organization": customer["company"], "fname": customer["first_name"], "lname": customer["last_name"],
        "email": customer["email"], "country": customer["country"], "currency": customer["currency"],
        "vat_number": customer["vat_number"], "created_at": created,
    }


def _invoice(world, rng: random.Random, customer: dict, client: dict, created: datetime, seq: dict,
             t: dict) -> None:
    currency, country = customer["currency"], customer["country"]
    treatment = world.tax_treatment(country, trade=True)
    rates = world.tax_rates(treatment, country, None)
    tax_name, tax_rate = rates[0] if rates else (None, ZERO)
    seq["invoice"] += 3
    seq["number"] += 1
    invoice_id = seq["invoice"]
    issued = business_date(created)
    terms = customer["terms_days"]
    fx = world.fx_rate(currency, created)
    inv = {
        "invoice_id": invoice_id, "invoice_number": invoice_number(seq["number"]),
        "client_id": client["client_id"], "customer_id": customer["customer_id"], "currency": currency,
        "country": country, "tax_treatment": treatment, "terms_days": terms, "create_date": issued,
        "due_on": issued + timedelta(days=terms), "created_at": created, "fx_rate": fx,
        "voided_at": None, "edited_at": None, "edit_note": None,
    }
    lines = []
    products = world.pick_lines(rng, True)[: rng.randint(1, 2)]
    for product, qty in products:
        unit = cat.trade_price(product, currency)
        lines.append(_line(seq, invoice_id, "goods", product.sku, product.title, product.category, qty, unit,
                           tax_name, tax_rate, world.unit_cost(product.sku, created)))
    for name, unit_name, gbp, (lo, hi) in rng.sample(SERVICES, rng.randint(1, 2)):
        lines.append(_line(seq, invoice_id, "services", None, name, "services", rng.randint(lo, hi),
                           service_price(gbp, currency), tax_name, tax_rate, ZERO, unit_name))
    for i, line in enumerate(lines, start=1):
        line["position"] = i
    inv["subtotal"] = sum((l["amount"] for l in lines), ZERO)
    inv["tax_total"] = sum((l["tax_amount"] for l in lines), ZERO)
    inv["total"] = inv["subtotal"] + inv["tax_total"]
    t["freshbooks_invoices"].append(inv)
    t["freshbooks_invoice_lines"].extend(lines)

    roll = rng.random()
    if roll < 0.06:  # raised in error: deleted in FreshBooks a few days later, never paid
        inv["voided_at"] = created + timedelta(seconds=rng.randint(43200, 6 * 86400))
        return
    if rng.random() < 0.12:
        inv["edited_at"] = created + timedelta(seconds=rng.randint(86400, 20 * 86400))
        inv["edit_note"] = "Fitting address and site contact updated"
    due = datetime(inv["due_on"].year, inv["due_on"].month, inv["due_on"].day, 11, tzinfo=UTC)
    pay = rng.random()
    if pay < 0.12:  # never paid
        return
    if pay < 0.60:  # on time
        _payment(world, rng, inv, inv["total"], due - timedelta(days=rng.uniform(0, terms - 2)), seq, t)
    elif pay < 0.85:  # late
        _payment(world, rng, inv, inv["total"], due + timedelta(days=rng.uniform(3, 45)), seq, t)
    else:  # in two parts; the second maybe never
        first = q(inv["total"] * D(rng.choice(("0.3", "0.4", "0.6"))))
        _payment(world, rng, inv, first, due - timedelta(days=rng.uniform(0, 10)), seq, t)
        if rng.random() < 0.6:
            _payment(world, rng, inv, inv["total"] - first, due + timedelta(days=rng.uniform(5, 40)), seq, t)


def _line(seq: dict, invoice_id: int, kind: str, sku: str | None, name: str, category: str, qty: int,
          unit: Decimal, tax_name: str | None, tax_rate: Decimal, unit_cost_gbp: Decimal,
          description: str | None = None) -> dict:
    seq["line"] += 1
    amount = q(unit * qty)
    return {
        "line_id": seq["line"], "invoice_id": invoice_id, "kind": kind, "sku": sku, "name": name,
        "description": description if description else (sku or ""), "category": category, "qty": qty,
        "unit_cost": unit, "amount": amount, "tax_name": tax_name, "tax_rate": tax_rate,
        "tax_amount": q(amount * tax_rate), "unit_cost_gbp": unit_cost_gbp,
    }


def _payment(world, rng: random.Random, inv: dict, amount: Decimal, at: datetime, seq: dict, t: dict) -> None:
    at = max(at, inv["created_at"] + timedelta(hours=2)).replace(microsecond=0)
    seq["payment"] += 1
    fx = world.fx_rate(inv["currency"], at)
    t["freshbooks_payments"].append({
        "payment_id": seq["payment"], "invoice_id": inv["invoice_id"], "client_id": inv["client_id"],
        "amount": amount, "currency": inv["currency"], "paid_at": at, "paid_on": business_date(at),
        "fx_rate": fx, "amount_gbp": q(amount * fx),
        "reference": f"BACS {rng.randint(10**7, 10**8 - 1)}",
    })
