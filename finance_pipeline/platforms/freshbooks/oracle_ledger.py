"""FreshBooks' ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

Every invoice is a trade document (`invoice_number` 'INV-FB-…'); its tax treatment follows the
client's country under the trade rules.  Payments are bank transfers held in the bank itself
(`held_in='bank'`), in the invoice's currency, with the sterling the bank credited: realised FX
against the invoice's rate.  No processor, so no fees, movements or disputes.  Service lines
(no SKU) have category 'services'.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.platforms.freshbooks.oracle import payment_at, visible
from finance_pipeline.platforms.freshbooks.world import order_number
from finance_pipeline.sandbox.oracle_ledger import LedgerFacts, _fetch


def facts(con, clock: datetime) -> LedgerFacts:
    invoices, _, payments, _ = visible(con, clock)
    f = LedgerFacts("freshbooks")
    number = {}
    for inv in invoices:
        oid = str(inv["invoice_id"])
        number[inv["invoice_id"]] = "INV-" + order_number(inv["invoice_number"])
        f.orders[oid] = {"tax_treatment": inv["tax_treatment"], "country": inv["country"], "region": None,
                         "order_number": order_number(inv["invoice_number"]),
                         "invoice_number": number[inv["invoice_id"]]}
    for p in payments:
        oid, at = str(p["invoice_id"]), payment_at(p["paid_on"])
        f.attempts.append({"payment_id": str(p["payment_id"]), "status": "succeeded", "at": at,
                           "doc": ("freshbooks", oid), "amount_home": p["amount_gbp"], "dispute_open": False,
                           "dispute_lost": False, "disputed": False})
        f.settlements.append({"source_type": "payment", "source_id": str(p["payment_id"]), "bt_id": None, "at": at,
                              "doc": ("freshbooks", oid), "currency": p["currency"], "amount": p["amount"],
                              "amount_home": p["amount_gbp"], "held_in": "bank"})
    for line in _fetch(con, """select l.invoice_id, l.position, l.qty, l.category, p.unit
                               from freshbooks_invoice_lines l join freshbooks_invoices i using (invoice_id)
                               left join products p using (sku) where i.created_at <= ?""", [clock]):
        f.lines[f"{line['invoice_id']}-{line['position']}"] = {
            "order_id": str(line["invoice_id"]), "category": line["category"],
            "metres": Decimal(line["qty"]) * Decimal("0.1") if line["unit"] == "10cm" else None,
        }
    return f
