"""Sage Intacct's ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

The division's invoices are trade documents with their own invoice numbers (`INV-SI-…`); customers
pay them by bank transfer, recorded in Intacct: each payment relieves the invoice straight into the
bank (`held_in='bank'`), in the invoice's currency at the payment day's rate, with no fee, no
clearing balance and no payout.
"""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from finance_pipeline.sandbox.oracle_ledger import LedgerFacts, _fetch

CENT = Decimal("0.01")


def facts(con, clock: datetime) -> LedgerFacts:
    T = [clock]
    f = LedgerFacts("sage_intacct")
    for d in _fetch(con, "select * from sage_intacct_documents where created_at <= ?", T):
        f.orders[str(d["record_no"])] = {"tax_treatment": d["tax_treatment"], "country": d["country"],
                                         "region": d["region"], "order_number": d["docno"],
                                         "invoice_number": f"INV-{d['docno']}"}
    for p in _fetch(con, "select * from sage_intacct_payments where paid_at <= ?", T):
        oid, pid = str(p["record_no"]), f"{p['payment_id']}-{p['detail_id']}"
        home = (p["amount"] * p["exch_rate"]).quantize(CENT, rounding=ROUND_HALF_UP)
        f.settlements.append({"source_type": "payment", "source_id": pid, "bt_id": None, "at": p["paid_at"],
                              "doc": ("sage_intacct", oid), "currency": p["currency"], "amount": p["amount"],
                              "amount_home": home, "held_in": "bank"})
        f.attempts.append({"payment_id": pid, "status": "succeeded", "at": p["paid_at"], "doc": ("sage_intacct", oid),
                           "amount_home": home, "dispute_open": False, "dispute_lost": False, "disputed": False})
    for line in _fetch(con, """select l.line_id, l.record_no, l.quantity, l.category, l.unit
                               from sage_intacct_document_lines l join sage_intacct_documents d using (record_no)
                               where d.created_at <= ? and l.kind = 'goods'""", T):
        f.lines[str(line["line_id"])] = {
            "order_id": str(line["record_no"]), "category": line["category"],
            "metres": Decimal(line["quantity"]) * Decimal("0.1") if line["unit"] == "10cm" else None,
        }
    return f
