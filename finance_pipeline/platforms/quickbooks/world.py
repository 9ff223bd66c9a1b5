"""The UK trade counter in the sandbox world: what the bookkeeper raises in QuickBooks Online herself.

The company file (UK, home currency GBP, VAT registered) holds, besides what the pipeline publishes
into it, the trade counter's own sales to the business's UK trade customers, all in GBP at 20 % VAT
(charged per line, `TaxExcluded`):

- **Invoices** on the customer's terms (`QB-10001 …`), trade prices, trade freight as a `Shipping`
  item line under the free-freight threshold.  Customers pay by bank transfer, recorded as a
  `Payment` (ReceivePayment) applied to the invoice: on time, late, in two parts, or never.
- **Sales receipts** (`QBS-10001 …`) for collections paid on the spot by bank transfer: no terms,
  the money is in the bank when the receipt is raised.
- A few invoices are voided before anything is paid (`voided_at`), a few raised in error are
  deleted (`deleted_at`, QBO keeps no trace but CDC's tombstone), and a few are edited after issue
  before any payment (a line of accessories added, `added_at` on the line, `edited_at` on the
  invoice): each edit bumps the document's SyncToken and LastUpdatedTime.

Every line carries the product's SKU at the start of its description (`<sku> · <title>`): the
company sells through two generic items (`Trade goods`, `Shipping`) rather than one item per SKU.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from finance_pipeline.sandbox import catalogue as cat
from finance_pipeline.sandbox.world import business_date, day_start, q

SHARE = 0.02
COUNTRIES = ("GB",)
CURRENCY = "GBP"
ID_BASE = 1_000_000_000  # world documents' QBO Ids: far above what the emulator allocates to writes
CUSTOMER_BASE = ID_BASE + 1_000_000
DOC_BASE = ID_BASE + 2_000_000
PAYMENT_BASE = ID_BASE + 5_000_000
LINE_BASE = 7_000_000
FIRST_NUMBER = 10_000
INVOICE_PREFIX, RECEIPT_PREFIX = "QB-", "QBS-"
D = Decimal
ZERO = D("0.00")
UTC = timezone.utc


class _Seq:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def customers(world) -> list[dict]:
    return [c for c in world.trade_customers if c["country"] in COUNTRIES and c["currency"] == CURRENCY]


def generate(world) -> dict[str, list[dict]]:
    t: dict[str, list[dict]] = {k: [] for k in (
        "quickbooks_customers", "quickbooks_documents", "quickbooks_lines", "quickbooks_payments")}
    pool = customers(world) or world.trade_customers[:1]
    qbo_id: dict[str, int] = {}
    for n, c in enumerate(pool, 1):
        qbo_id[c["customer_id"]] = CUSTOMER_BASE + n * 3
        t["quickbooks_customers"].append({
            "qbo_id": qbo_id[c["customer_id"]], "customer_id": c["customer_id"], "company": c["company"],
            "display_name": f"{c['company']} ({c['customer_id']})", "email": c["email"], "country": c["country"],
            "currency": c["currency"], "terms_days": c["terms_days"] or 30, "created_at": c["created_at"],
        })
    seq = {"invoice": _Seq(), "receipt": _Seq(), "doc": _Seq(), "line": _Seq(), "payment": _Seq()}
    for day, rng, expected in world.days(SHARE):
        for _ in range(world.count(rng, expected)):
            created = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
                seconds=rng.randint(8 * 3600, 18 * 3600))
            customer = rng.choice(pool)
            receipt = rng.random() < 0.2
            _document(world, rng, created, customer, qbo_id[customer["customer_id"]], seq, t, receipt)
    world.index("quickbooks_documents", "qbo_id", "created_at")
    world.index("quickbooks_lines", "qbo_id")
    world.index("quickbooks_payments", "invoice_qbo_id", "created_at")
    return t


def _line(world, doc: dict, product: cat.Product, qty: int, pos: int, seq: dict, added_at: datetime | None,
          rate: Decimal) -> dict:
    price = cat.trade_price(product, doc["currency"])
    amount = price * qty
    return {
        "line_id": LINE_BASE + seq["line"](), "qbo_id": doc["qbo_id"], "line_num": pos, "kind": "goods",
        "sku": product.sku, "title": product.title, "qty": qty, "unit_price": price, "amount": amount,
        "tax_rate": rate, "tax_amount": q(amount * rate), "added_at": added_at,
        "unit_cost_gbp": world.unit_cost(product.sku, doc["created_at"]),
    }


def _document(world, rng: random.Random, created: datetime, customer: dict, customer_qbo_id: int, seq: dict,
              t: dict, receipt: bool) -> None:
    treatment = world.tax_treatment(customer["country"], trade=True)
    rate = sum((r for _, r in world.tax_rates(treatment, customer["country"], customer["region"])), ZERO)
    terms = 0 if receipt else (customer["terms_days"] or 30)
    issued = business_date(created)
    number = FIRST_NUMBER + (seq["receipt"] if receipt else seq["invoice"])()
    doc = {
        "qbo_id": DOC_BASE + seq["doc"]() * 7, "entity": "SalesReceipt" if receipt else "Invoice",
        "doc_number": f"{RECEIPT_PREFIX if receipt else INVOICE_PREFIX}{number}",
        "customer_qbo_id": customer_qbo_id, "customer_id": customer["customer_id"],
        "customer_name": customer["company"], "display_name": f"{customer['company']} ({customer['customer_id']})",
        "email": customer["email"], "country": customer["country"], "currency": customer["currency"],
        "exchange_rate": world.fx_rate(customer["currency"], created), "tax_treatment": treatment,
        "tax_rate": rate, "terms_days": terms, "txn_date": issued, "due_date": issued + timedelta(days=terms),
        "created_at": created, "edited_at": None, "voided_at": None, "deleted_at": None,
        "payment_ref": f"FPS{rng.randint(10 ** 9, 10 ** 10 - 1)}" if receipt else None,
        "po_number": f"PO-{rng.randint(10000, 99999)}",
    }
    lines = [_line(world, doc, p, qty, i, seq, None, rate)
             for i, (p, qty) in enumerate(world.pick_lines(rng, True), 1)]
    merchandise = sum((line["amount"] for line in lines), ZERO)
    _, _, freight, freight_free = cat.SHIPPING[doc["currency"]]
    doc["shipping"] = ZERO if merchandise >= freight_free else freight
    doc["shipping_tax"] = q(doc["shipping"] * rate)
    t["quickbooks_documents"].append(doc)
    t["quickbooks_lines"].extend(lines)
    if receipt:
        return
    roll = rng.random()
    if roll < 0.04:  # raised in error and voided before any payment
        doc["voided_at"] = (created + timedelta(hours=rng.uniform(2, 72))).replace(microsecond=0)
        return
    if roll < 0.08:  # raised in error and deleted (only CDC tells)
        doc["deleted_at"] = (created + timedelta(hours=rng.uniform(2, 200))).replace(microsecond=0)
        return
    roll = rng.random()
    due = day_start(doc["due_date"])
    if roll < 0.55:
        plan = [(None, created + timedelta(days=rng.uniform(3, terms)))]
    elif roll < 0.75:
        plan = [(None, due + timedelta(days=rng.uniform(2, 45)))]
    elif roll < 0.9:
        plan = [(D(rng.randint(30, 70)) / 100, created + timedelta(days=rng.uniform(5, terms))),
                (None, due + timedelta(days=rng.uniform(10, 80)))]
    else:
        plan = []  # never pays
    if rng.random() < 0.1:  # edited after issue, before any payment: a line added
        at = (created + timedelta(days=rng.uniform(0.5, 2.5))).replace(microsecond=0)
        if not plan or at < plan[0][1]:
            product = rng.choice(cat.ACCESSORIES)
            lines.append(_line(world, doc, product, rng.randint(5, 30), len(lines) + 1, seq, at, rate))
            t["quickbooks_lines"].append(lines[-1])
            doc["edited_at"] = at
    total = sum((line["amount"] + line["tax_amount"] for line in lines), ZERO) + doc["shipping"] + doc["shipping_tax"]
    paid = ZERO
    for part, when in plan:
        when = when.replace(microsecond=0)
        amount = q(total * part) if part is not None else total - paid
        if amount <= 0:
            continue
        t["quickbooks_payments"].append({
            "qbo_id": PAYMENT_BASE + seq["payment"]() * 11, "invoice_qbo_id": doc["qbo_id"],
            "customer_qbo_id": customer_qbo_id, "customer_id": doc["customer_id"], "created_at": when,
            "txn_date": business_date(when), "amount": amount, "currency": doc["currency"],
            "exchange_rate": world.fx_rate(doc["currency"], when),
            "reference": f"BACS{rng.randint(10 ** 8, 10 ** 9 - 1)}",
        })
        paid += amount
