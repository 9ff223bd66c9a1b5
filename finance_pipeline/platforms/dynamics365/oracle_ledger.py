"""Business Central's ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

The US trade desk's invoices are trade documents in USD (resale-exempt or state sales tax, by the
customer's state); customers pay them by bank transfer, recorded in BC against the invoice: the
money goes straight to the bank (`held_in='bank'`), in the invoice's currency, no fees or disputes.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.platforms.dynamics365.oracle import invoice_number, rates
from finance_pipeline.platforms.dynamics365.world import midnight, q
from finance_pipeline.sandbox.oracle_ledger import LedgerFacts, _fetch


def facts(con, clock: datetime) -> LedgerFacts:
    T = [clock]
    fx = rates(con)
    f = LedgerFacts("dynamics365")
    numbers = {}
    for i in _fetch(con, "select * from dynamics365_invoices where created_at <= ?", T):
        numbers[i["invoice_id"]] = i["number"]
        f.orders[i["invoice_id"]] = {"tax_treatment": i["tax_treatment"], "country": "US", "region": i["state"],
                                     "order_number": i["number"], "invoice_number": invoice_number(i["number"])}
    for p in _fetch(con, "select * from dynamics365_payments where created_at <= ?", T):
        at, doc, home = midnight(p["posting_date"]), ("dynamics365", p["invoice_id"]), q(p["amount"] * fx[p["posting_date"]])
        f.attempts.append({"payment_id": p["payment_id"], "status": "succeeded", "at": at, "doc": doc,
                           "amount_home": home, "dispute_open": False, "dispute_lost": False, "disputed": False})
        f.settlements.append({"source_type": "payment", "source_id": p["payment_id"], "bt_id": None, "at": at,
                              "doc": doc, "currency": "USD", "amount": p["amount"], "amount_home": home,
                              "held_in": "bank"})
    for line in _fetch(con, """select l.line_id, l.invoice_id, l.quantity, p.category, p.unit
                               from dynamics365_invoice_lines l join dynamics365_invoices i using (invoice_id)
                               join products p on p.sku = l.item_number
                               where l.line_type = 'Item' and i.created_at <= ?""", T):
        f.lines[line["line_id"]] = {
            "order_id": line["invoice_id"], "category": line["category"],
            "metres": Decimal(line["quantity"]) * Decimal("0.1") if line["unit"] == "10cm" else None,
        }
    return f
