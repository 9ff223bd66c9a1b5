"""SAP Business One's ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

The desk's invoices are trade documents with their own numbers ('INV-SB1-<DocNum>'); customers pay
them by bank transfer, recorded in B1: each payment settles its invoice straight into the bank
(`held_in='bank'`), in the invoice's currency, GBP at the payment day's rate; no processor, fees,
disputes or payouts.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.platforms.sap_business_one.oracle import CHANNEL, invoice_number
from finance_pipeline.sandbox.oracle_ledger import LedgerFacts, _fetch


def facts(con, clock: datetime) -> LedgerFacts:
    T = [clock]
    f = LedgerFacts(CHANNEL)
    numbers = {}
    for i in _fetch(con, f"select * from {CHANNEL}_invoices where created_at <= ?", T):
        oid = str(i["doc_entry"])
        numbers[i["doc_entry"]] = invoice_number(i["doc_num"])
        f.orders[oid] = {"tax_treatment": i["tax_treatment"], "country": i["country"], "region": i["region"],
                         "order_number": f"SB1-{i['doc_num']}", "invoice_number": numbers[i["doc_entry"]]}
    for p in _fetch(con, f"select * from {CHANNEL}_payments where created_at <= ?", T):
        doc = (CHANNEL, str(p["invoice_doc_entry"]))
        pid = str(p["doc_entry"])
        f.settlements.append({"source_type": "payment", "source_id": pid, "bt_id": None, "at": p["created_at"],
                              "doc": doc, "currency": p["currency"], "amount": p["amount"],
                              "amount_home": p["amount_home"], "held_in": "bank"})
        f.attempts.append({"payment_id": pid, "status": "succeeded", "at": p["created_at"], "doc": doc,
                           "amount_home": p["amount_home"], "dispute_open": False, "dispute_lost": False,
                           "disputed": False})
    for line in _fetch(con, f"""select l.doc_entry, l.line_num, l.quantity, p.category, p.unit
                               from {CHANNEL}_invoice_lines l join {CHANNEL}_invoices i using (doc_entry)
                               join products p using (sku) where i.created_at <= ?""", T):
        f.lines[f"{line['doc_entry']}-{line['line_num']}"] = {
            "order_id": str(line["doc_entry"]), "category": line["category"],
            "metres": Decimal(line["quantity"]) * Decimal("0.1") if line["unit"] == "10cm" else None,
        }
    return f
