"""Lightspeed's ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

Cash is taken into and paid back from the showroom till; card tenders go through Lightspeed
Payments, whose balance, fees and payouts the Retail API does not show, so card money waits in
undeposited funds. A return ticket pays back in the original tender. All money is GBP.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.sandbox.oracle_ledger import LedgerFacts, _fetch

CASH_TENDER = "1"


def facts(con, clock: datetime) -> LedgerFacts:
    T = [clock]
    f = LedgerFacts("lightspeed")
    sales = {s["sale_id"]: s for s in _fetch(con, "select * from lightspeed_sales where created_at <= ?", T)}
    for s in sales.values():
        if s["kind"] == "sale":
            f.orders[s["sale_id"]] = {"tax_treatment": "uk_vat", "country": "GB", "region": None,
                                      "order_number": s["ticket_number"], "invoice_number": None}
    for line in _fetch(con, """select l.sale_line_id, l.sale_id, l.quantity, p.category, p.unit
                               from lightspeed_sale_lines l join lightspeed_sales s using (sale_id)
                               join products p using (sku)
                               where s.kind = 'sale' and s.created_at <= ?""", T):
        f.lines[line["sale_line_id"]] = {
            "order_id": line["sale_id"], "category": line["category"],
            "metres": Decimal(line["quantity"]) * Decimal("0.1") if line["unit"] == "10cm" else None}
    for p in _fetch(con, "select * from lightspeed_sale_payments where created_at <= ?", T):
        s = sales.get(p["sale_id"])
        if s is None:
            continue
        held_in = "cash" if p["payment_type_id"] == CASH_TENDER else "undeposited"
        if s["kind"] == "sale":
            doc = ("lightspeed", s["sale_id"])
            f.attempts.append({"payment_id": p["sale_payment_id"], "status": "succeeded", "at": p["created_at"],
                               "doc": doc, "amount_home": p["amount"], "dispute_open": False,
                               "dispute_lost": False, "disputed": False})
            f.settlements.append({"source_type": "payment", "source_id": p["sale_payment_id"], "bt_id": None,
                                  "at": p["created_at"], "doc": doc, "currency": "GBP", "amount": p["amount"],
                                  "amount_home": p["amount"], "held_in": held_in})
        elif not s["voided"]:  # the return ticket's tender: money back, dated with the return
            doc = ("lightspeed", s["returned_sale_id"])
            f.settlements.append({"source_type": "payment_refund", "source_id": s["sale_id"], "bt_id": None,
                                  "at": s["created_at"], "doc": doc, "currency": "GBP", "amount": p["amount"],
                                  "amount_home": p["amount"], "held_in": held_in})
    return f
