"""Zoho Books' ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

The desk's customers pay by bank transfer, recorded in Zoho Books against the invoice: each
payment settles straight into the bank (`held_in='bank'`), in the invoice's currency at its own
date's rate, with no processor, fee or payout.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.platforms.zoho_books.oracle import _invoices, _lines, _payments
from finance_pipeline.sandbox.oracle_ledger import LedgerFacts
from finance_pipeline.sandbox.world import q as _q


def facts(con, clock: datetime) -> LedgerFacts:
    f = LedgerFacts("zoho_books")
    for i in _invoices(con, clock):
        f.orders[str(i["invoice_id"])] = {
            "tax_treatment": i["tax_treatment"], "country": i["country"], "region": None,
            "order_number": i["invoice_number"], "invoice_number": f"INV-{i['invoice_number']}"}
    for p in _payments(con, clock):
        pid, doc = str(p["payment_id"]), ("zoho_books", str(p["invoice_id"]))
        home = _q(p["amount"] * p["exchange_rate"])
        f.attempts.append({"payment_id": pid, "status": "succeeded", "at": p["created_at"], "doc": doc,
                           "amount_home": home, "dispute_open": False, "dispute_lost": False, "disputed": False})
        f.settlements.append({"source_type": "payment", "source_id": pid, "bt_id": None, "at": p["created_at"],
                              "doc": doc, "currency": p["currency_code"], "amount": p["amount"],
                              "amount_home": home, "held_in": "bank"})
    for line in _lines(con, clock):
        f.lines[str(line["line_item_id"])] = {
            "order_id": str(line["invoice_id"]), "category": line["category"],
            "metres": Decimal(line["quantity"]) * Decimal("0.1") if line["product_unit"] == "10cm" else None}
    return f
