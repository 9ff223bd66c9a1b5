"""QuickBooks Online's ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

The trade counter's customers pay by bank transfer, recorded in QuickBooks against the invoice (or
at once, on a sales receipt): each payment settles straight into the bank (`held_in='bank'`), in
the document's currency at its own rate, with no processor, fee or payout.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.platforms.quickbooks.oracle import _documents, _lines, _payments
from finance_pipeline.sandbox.oracle_ledger import LedgerFacts
from finance_pipeline.sandbox.world import q as _q


def facts(con, clock: datetime) -> LedgerFacts:
    f = LedgerFacts("quickbooks")
    for d in _documents(con, clock):
        f.orders[str(d["qbo_id"])] = {
            "tax_treatment": d["tax_treatment"], "country": d["country"], "region": None,
            "order_number": d["doc_number"], "invoice_number": f"INV-{d['doc_number']}"}
    for p in _payments(con, clock):
        pid, doc = p["payment_id"], ("quickbooks", str(p["invoice_qbo_id"]))
        home = _q(p["amount"] * p["exchange_rate"])
        f.attempts.append({"payment_id": pid, "status": "succeeded", "at": p["created_at"], "doc": doc,
                           "amount_home": home, "dispute_open": False, "dispute_lost": False, "disputed": False})
        f.settlements.append({"source_type": "payment", "source_id": pid, "bt_id": None, "at": p["created_at"],
                              "doc": doc, "currency": p["currency"], "amount": p["amount"],
                              "amount_home": home, "held_in": "bank"})
    for line in _lines(con, clock):
        f.lines[f"{line['qbo_id']}-{line['line_num']}"] = {
            "order_id": str(line["qbo_id"]), "category": line["category"],
            "metres": Decimal(line["qty"]) * Decimal("0.1") if line["product_unit"] == "10cm" else None}
    return f
