"""SAP Business One in the sandbox world: the wholesale warehouse desk's A/R invoices.

The warehouse desk sells bulk fabric rolls, tracks and poles to retailers and invoices them in SAP
Business One (company database `SBODEMOGB`, local currency GBP, server time Europe/London).  Only
customers billed in GBP (UK, VAT at 20 %) and AUD (Australia, exports zero-rated) are served from
the warehouse; the business partner code is the master customer number (`C000012`).  Invoices use
the trade prices, no tax inside the prices, per-line VAT groups (`O1` standard, `OX` exports) and the
customer's net-30/60 terms.

Each invoice keeps B1's two money sides: document currency (`*_fc`, B1's `RowTotalFC`, `DocTotalFc`
for a foreign document) and local currency GBP at the document's rate (`DocRate`, GBP per unit, the
day's rate), each line and each tax amount converted and rounded on its own, the totals summed.
Some invoices are cancelled a few days after issue, before any payment (B1 then adds a cancellation
document, `CancelStatus = csCancellation`, and marks the original `Cancelled = tYES`); some are edited
later (the due date extended by agreement, a comment), which moves `UpdateDate`/`UpdateTime`.

Customers pay by bank transfer, recorded as incoming payments (`IncomingPayments`, one invoice each):
on time, late, part-paid (sometimes settled later, sometimes never), or not at all.  A payment is in
the invoice's currency at the payment day's rate (`DocRate`), so AUD invoices realise FX.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from finance_pipeline.sandbox import catalogue as cat
from finance_pipeline.sandbox.world import _Seq, business_date, q

SHARE = 0.02  # of the Shopify volume: ~40 invoices a year in a 2,000-order world
CURRENCIES = ("GBP", "AUD")
LOCAL = "GBP"
AUD_SHARE = 0.3  # the Australian retailers take about a third of the warehouse's invoices
FIRST_DOC_ENTRY = 1  # DocEntry: the document key, one sequence for invoices (and cancellations)
FIRST_DOC_NUM = 310_001  # DocNum of the A/R invoice numbering series
FIRST_PAYMENT_ENTRY = 1
FIRST_PAYMENT_NUM = 90_001
VAT_GROUPS = {"uk_vat": "O1", "export_zero_rated": "OX"}
D = Decimal
ZERO = D("0.00")
UTC = timezone.utc


def local(amount: Decimal, rate: Decimal, currency: str) -> Decimal:
    """An amount in local currency (GBP) as B1 books it: document amount x DocRate, to the cent."""
    return amount if currency == LOCAL else q(amount * rate)


def _at(day, rng: random.Random) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.randint(8 * 3600, 17 * 3600))


def generate(world) -> dict[str, list[dict]]:
    t: dict[str, list[dict]] = {k: [] for k in (
        "sap_business_one_invoices", "sap_business_one_invoice_lines", "sap_business_one_payments")}
    by_currency = {ccy: [c for c in world.trade_customers if c["currency"] == ccy] for ccy in CURRENCIES}
    pools = [pool for pool in by_currency.values() if pool]
    weights = [AUD_SHARE if pool[0]["currency"] == "AUD" else 1 - AUD_SHARE for pool in pools]
    entry, num = _Seq(FIRST_DOC_ENTRY - 1), _Seq(FIRST_DOC_NUM - 1)
    pay_entry, pay_num = _Seq(FIRST_PAYMENT_ENTRY - 1), _Seq(FIRST_PAYMENT_NUM - 1)
    for day, rng, expected in world.days(SHARE):
        for _ in range(world.count(rng, expected)):
            _invoice(world, rng, _at(day, rng), rng.choice(rng.choices(pools, weights)[0]), entry, num, pay_entry, pay_num, t)
    _renumber(t)
    world.index("sap_business_one_invoices", "doc_entry", "created_at")
    world.index("sap_business_one_invoice_lines", "doc_entry")
    world.index("sap_business_one_payments", "invoice_doc_entry", "created_at")
    return t


def _invoice(world, rng: random.Random, created: datetime, customer: dict, entry: _Seq, num: _Seq,
             pay_entry: _Seq, pay_num: _Seq, t: dict) -> None:
    country, currency = customer["country"], customer["currency"]
    treatment = world.tax_treatment(country, trade=True)
    rates = world.tax_rates(treatment, country, customer["region"])
    rate = sum((r for _, r in rates), ZERO)
    fx = D("1") if currency == LOCAL else world.fx_rate(currency, created)
    doc_entry, doc_date = entry(), business_date(created)
    inv = {
        "doc_entry": doc_entry, "doc_num": num(), "customer_id": customer["customer_id"],
        "card_name": customer["company"], "email": customer["email"], "country": country,
        "region": customer["region"], "currency": currency, "doc_rate": fx, "tax_treatment": treatment,
        "vat_group": VAT_GROUPS[treatment], "tax_rate": rate, "terms_days": customer["terms_days"],
        "created_at": created, "doc_date": doc_date, "due_date": doc_date + timedelta(days=customer["terms_days"]),
        "edited_at": None, "edited_due_date": None, "edit_comment": None,
        "cancelled_at": None, "cancel_doc_entry": None, "cancel_doc_num": None,
    }
    total_fc = vat_fc = total_local = vat_local = ZERO
    for line_num, (product, qty) in enumerate(world.pick_lines(rng, True)):
        price = cat.trade_price(product, currency)
        line_fc = q(price * qty)
        tax_fc = q(line_fc * rate)
        line_l, tax_l = local(line_fc, fx, currency), local(tax_fc, fx, currency)
        t["sap_business_one_invoice_lines"].append({
            "doc_entry": doc_entry, "line_num": line_num, "sku": product.sku, "title": product.title,
            "quantity": qty, "unit_price": price, "line_total_fc": line_fc, "tax_fc": tax_fc,
            "line_total_local": line_l, "tax_local": tax_l, "unit_cost_gbp": world.unit_cost(product.sku, created),
        })
        total_fc, vat_fc, total_local, vat_local = total_fc + line_fc, vat_fc + tax_fc, total_local + line_l, vat_local + tax_l
    inv.update({"doc_total_fc": total_fc + vat_fc, "vat_sum_fc": vat_fc,
                "doc_total": total_local + vat_local, "vat_sum": vat_local})
    t["sap_business_one_invoices"].append(inv)
    if rng.random() < 0.06:  # cancelled before payment: B1 adds a cancellation document
        inv["cancelled_at"] = created + timedelta(days=rng.uniform(0.5, 5))
        inv["cancel_doc_entry"], inv["cancel_doc_num"] = entry(), num()
        return
    due = inv["due_date"]
    if rng.random() < 0.12:  # terms extended by agreement a few days after issue
        inv["edited_at"] = created + timedelta(days=rng.uniform(1, 10), seconds=rng.randint(0, 3600))
        inv["edited_due_date"] = due = due + timedelta(days=14)
        inv["edit_comment"] = "Payment terms extended by 14 days (agreed with the buyer)"
    total = inv["doc_total_fc"]
    due_at = datetime(due.year, due.month, due.day, tzinfo=UTC)
    roll = rng.random()
    if roll < 0.55:  # on time
        _payment(world, rng, inv, total, due_at - timedelta(days=rng.uniform(0, 12)), pay_entry, pay_num, t)
    elif roll < 0.78:  # late
        _payment(world, rng, inv, total, due_at + timedelta(days=rng.uniform(3, 60)), pay_entry, pay_num, t)
    elif roll < 0.90:  # part-paid, the rest sometimes later
        part = q(total * D(rng.choice(("0.25", "0.40", "0.50"))))
        _payment(world, rng, inv, part, due_at - timedelta(days=rng.uniform(0, 5)), pay_entry, pay_num, t)
        if rng.random() < 0.5:
            _payment(world, rng, inv, total - part, due_at + timedelta(days=rng.uniform(10, 70)), pay_entry,
                     pay_num, t)
    # else: never paid


def _payment(world, rng: random.Random, inv: dict, amount: Decimal, when: datetime, pay_entry: _Seq,
             pay_num: _Seq, t: dict) -> None:
    when = max(when, inv["created_at"] + timedelta(hours=2))
    at = datetime(when.year, when.month, when.day, tzinfo=UTC) + timedelta(seconds=rng.randint(9 * 3600, 16 * 3600))
    if at <= inv["created_at"]:
        at = inv["created_at"] + timedelta(hours=2)
    if inv["edited_at"] is not None and at <= inv["edited_at"]:
        at = inv["edited_at"] + timedelta(hours=1)
    currency = inv["currency"]
    rate = D("1") if currency == LOCAL else world.fx_rate(currency, at)
    entry = pay_entry()
    t["sap_business_one_payments"].append({
        "doc_entry": entry, "doc_num": pay_num(), "invoice_doc_entry": inv["doc_entry"],
        "customer_id": inv["customer_id"], "created_at": at, "doc_date": business_date(at), "currency": currency,
        "doc_rate": rate, "amount": amount, "amount_home": local(amount, rate, currency),
        "reference": f"BACS {inv['doc_num']}-{entry}",
    })


def _renumber(t: dict) -> None:
    """B1 allocates DocEntry and DocNum when a document is added, so they rise with time: invoices and
    the cancellation documents among them in the order they were added, receipts likewise (a late
    payment of an old invoice gets a higher number than an early payment of a newer one)."""
    added = [(inv["created_at"], 0, inv) for inv in t["sap_business_one_invoices"]]
    added += [(inv["cancelled_at"], 1, inv) for inv in t["sap_business_one_invoices"] if inv["cancelled_at"]]
    entry, num = _Seq(FIRST_DOC_ENTRY - 1), _Seq(FIRST_DOC_NUM - 1)
    new_entry: dict[int, int] = {}
    for _, kind, inv in sorted(added, key=lambda a: (a[0], a[1], a[2]["doc_entry"])):
        if kind == 0:
            new_entry[inv["doc_entry"]] = entry()
            inv["doc_num"] = num()
        else:
            inv["cancel_doc_entry"], inv["cancel_doc_num"] = entry(), num()
    for inv in t["sap_business_one_invoices"]:
        inv["doc_entry"] = new_entry[inv["doc_entry"]]
    for line in t["sap_business_one_invoice_lines"]:
        line["doc_entry"] = new_entry[line["doc_entry"]]
    doc_num = {inv["doc_entry"]: inv["doc_num"] for inv in t["sap_business_one_invoices"]}
    entry, num = _Seq(FIRST_PAYMENT_ENTRY - 1), _Seq(FIRST_PAYMENT_NUM - 1)
    for pay in sorted(t["sap_business_one_payments"], key=lambda p: (p["created_at"], p["doc_entry"])):
        pay["doc_entry"], pay["doc_num"] = entry(), num()
        pay["invoice_doc_entry"] = new_entry[pay["invoice_doc_entry"]]
        pay["reference"] = f"BACS {doc_num[pay['invoice_doc_entry']]}-{pay['doc_entry']}"
    t["sap_business_one_invoices"].sort(key=lambda inv: inv["doc_entry"])
    t["sap_business_one_invoice_lines"].sort(key=lambda line: (line["doc_entry"], line["line_num"]))
    t["sap_business_one_payments"].sort(key=lambda pay: pay["doc_entry"])
