"""The Sage Intacct company in the sandbox world: the hotel-contracts division's trade invoices.

The division sells large trade orders to hotel groups (fabric by the 10 cm, rails, accessories at
trade prices, tax-exclusive) and invoices them straight from Intacct Order Entry as "Sales Invoice"
transactions (`DOCNO` SI-10001 …), in the customer's currency (GBP, EUR or USD; the division has no
Australian accounts), with the customer's net-30/60 terms.  Customers are the business's master
trade accounts: Intacct's `CUSTOMERID` is the master account number (`C000012`).  Tax follows the
trade rules (UK VAT, EU reverse charge, US resale exemption).  Freight is a line of its own (item
`FREIGHT`) under the trade free-freight threshold.

As time passes: a few invoices are cancelled (voided) days after issue; some are edited after issue
(the customer's PO number corrected: `WHENMODIFIED` moves, money does not); customers pay by bank
transfer, recorded in Accounts Receivable as payments (`ARPYMT`) applied to the invoice's AR record
(`ARPYMTDETAIL`): on time, late, in two parts, or never.  A foreign-currency payment is recorded in
the invoice's currency at the payment day's rate, so the difference against the invoice's own rate is
realised FX.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from finance_pipeline.sandbox import catalogue as cat
from finance_pipeline.sandbox.world import business_date, day_start, q

SHARE = 0.02
CURRENCIES = ("GBP", "EUR", "USD")
FIRST_DOC = 5_000  # RECORDNO of the first invoice; DOCNO SI-10001 …
FIRST_DOCNO = 10_000
FIRST_LINE = 70_000
FIRST_PAYMENT = 8_000
AR_OFFSET = 900_000  # the AR invoice record (PRRECORDKEY) = AR_OFFSET + RECORDNO
D = Decimal
ZERO = D("0.00")
CENT = D("0.01")
UTC = timezone.utc


def generate(world) -> dict[str, list[dict]]:
    t: dict[str, list[dict]] = {k: [] for k in (
        "sage_intacct_documents", "sage_intacct_document_lines", "sage_intacct_payments")}
    customers = [c for c in world.trade_customers if c["currency"] in CURRENCIES]
    seq = {"doc": FIRST_DOC, "line": FIRST_LINE, "pay": FIRST_PAYMENT}
    for day, rng, expected in world.days(SHARE):
        for _ in range(world.count(rng, expected)):
            created = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                seconds=rng.randint(8 * 3600, 18 * 3600))
            _invoice(world, rng, created, rng.choice(customers), seq, t)
    world.index("sage_intacct_documents", "record_no", "created_at")
    world.index("sage_intacct_document_lines", "record_no")
    world.index("sage_intacct_payments", "record_no", "paid_at")
    return t


def _invoice(world, rng: random.Random, created: datetime, customer: dict, seq: dict, t: dict) -> None:
    seq["doc"] += 1
    record_no = seq["doc"]
    currency, country, region = customer["currency"], customer["country"], customer["region"]
    treatment = world.tax_treatment(country, trade=True)
    taxes = world.tax_rates(treatment, country, region)
    rate = sum((r for _, r in taxes), ZERO)
    issued = business_date(created)
    terms = customer["terms_days"]
    doc = {
        "record_no": record_no, "docno": f"SI-{FIRST_DOCNO + record_no - FIRST_DOC}",
        "ar_record_no": AR_OFFSET + record_no, "customer_id": customer["customer_id"],
        "customer_name": customer["company"], "customer_email": customer["email"], "currency": currency,
        "country": country, "region": region, "tax_treatment": treatment, "terms_days": terms,
        "created_at": created, "issued_on": issued, "due_on": issued + timedelta(days=terms),
        "exch_rate": world.fx_rate(currency, created), "po_number": f"PO-{rng.randint(10000, 99999)}",
        "edited_at": None, "edited_po_number": None, "voided_at": None,
    }
    lines = []
    for n, (product, qty) in enumerate(world.pick_lines(rng, True), start=1):
        price = cat.trade_price(product, currency)
        value = price * qty
        seq["line"] += 1
        lines.append({
            "line_id": seq["line"], "record_no": record_no, "line_no": n, "item_id": product.sku,
            "description": product.title, "unit": product.unit, "category": product.category, "kind": "goods",
            "quantity": qty, "price": price, "value": value, "tax_rate": rate,
            "tax_amount": sum((q(value * r) for _, r in taxes), ZERO),
            "unit_cost_gbp": world.unit_cost(product.sku, created),
        })
    goods = sum((line["value"] for line in lines), ZERO)
    _, _, freight, freight_free = cat.SHIPPING[currency]
    if goods < freight_free:
        seq["line"] += 1
        lines.append({
            "line_id": seq["line"], "record_no": record_no, "line_no": len(lines) + 1, "item_id": "FREIGHT",
            "description": "Trade freight", "unit": "each", "category": None, "kind": "freight", "quantity": 1,
            "price": freight, "value": freight, "tax_rate": rate,
            "tax_amount": sum((q(freight * r) for _, r in taxes), ZERO), "unit_cost_gbp": ZERO,
        })
    total = sum((line["value"] + line["tax_amount"] for line in lines), ZERO)
    t["sage_intacct_documents"].append(doc)
    t["sage_intacct_document_lines"].extend(lines)

    if rng.random() < 0.06:  # cancelled a few days after issue, before anything was paid
        doc["voided_at"] = (created + timedelta(days=rng.uniform(1, 6))).replace(microsecond=0)
        return
    if rng.random() < 0.15:  # the customer's PO number corrected after issue
        doc["edited_at"] = (created + timedelta(days=rng.uniform(2, 20), seconds=rng.randint(0, 3600))).replace(microsecond=0)
        doc["edited_po_number"] = f"PO-{rng.randint(10000, 99999)}"
    due = day_start(doc["due_on"])
    roll = rng.random()
    if roll < 0.5:
        plan = [(total, created + timedelta(days=rng.uniform(5, terms)))]
    elif roll < 0.72:
        plan = [(total, due + timedelta(days=rng.uniform(3, 45)))]
    elif roll < 0.87:
        part = q(total * D(rng.randint(30, 70)) / 100)
        plan = [(part, created + timedelta(days=rng.uniform(7, terms))),
                (total - part, due + timedelta(days=rng.uniform(10, 80)))]
    elif roll < 0.94:
        part = q(total * D(rng.randint(40, 80)) / 100)  # paid in part, the rest still owed
        plan = [(part, created + timedelta(days=rng.uniform(7, terms + 20)))]
    else:
        plan = []  # never pays
    for amount, at in plan:
        at = at.replace(microsecond=0)
        seq["pay"] += 1
        t["sage_intacct_payments"].append({
            "payment_id": seq["pay"], "detail_id": seq["pay"] * 10 + 1, "record_no": record_no,
            "ar_record_no": doc["ar_record_no"], "customer_id": doc["customer_id"], "paid_at": at,
            "paid_on": business_date(at), "currency": currency, "amount": amount,
            "exch_rate": world.fx_rate(currency, at), "bank_reference": f"BT{rng.randint(10 ** 7, 10 ** 8 - 1)}",
        })
