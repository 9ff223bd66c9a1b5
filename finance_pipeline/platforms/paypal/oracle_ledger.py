"""PayPal's ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind): each visible capture settles
its order, each refund gives money back, fees are PayPal's capture fees."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.platforms.paypal.oracle import visible
from finance_pipeline.sandbox.oracle_ledger import LedgerFacts, _fetch


def facts(con, clock: datetime) -> LedgerFacts:
    orders, lines, refunds, txns = visible(con, clock)
    f = LedgerFacts("paypal")
    for oid, o in orders.items():
        f.orders[oid] = {"tax_treatment": o["tax_treatment"], "country": o["country"], "region": None,
                         "order_number": o["invoice_id"], "invoice_number": None}
    products = {p["sku"]: p for p in _fetch(con, "select sku, category, unit from products")}
    for l in lines:
        p = products[l["sku"]]
        f.lines[f"{l['order_id']}-{l['position'] + 1}"] = {
            "order_id": l["order_id"], "category": p["category"],
            "metres": Decimal(l["quantity"]) * Decimal("0.1") if p["unit"] == "10cm" else None}
    for t in txns:
        if t["event_code"] == "T0006" and t["order_id"] in orders:
            o = orders[t["order_id"]]
            doc = ("paypal", o["order_id"])
            f.settlements.append({"source_type": "payment", "source_id": o["capture_id"], "bt_id": t["txn_id"],
                                  "at": o["captured_at"], "doc": doc, "currency": "GBP", "amount": o["total"],
                                  "amount_home": o["total"]})
            f.attempts.append({"payment_id": o["capture_id"], "status": "succeeded", "at": o["captured_at"], "doc": doc,
                               "amount_home": o["total"], "dispute_open": False, "dispute_lost": False, "disputed": False})
        elif t["event_code"] == "T1107":
            f.settlements.append({"source_type": "payment_refund", "source_id": t["txn_id"], "bt_id": t["txn_id"],
                                  "at": t["initiated_at"], "doc": ("paypal", t["order_id"]), "currency": None,
                                  "amount": None, "amount_home": t["amount"]})
        elif t["event_code"] != "T0400" and t["amount"]:
            f.movements.append({"bt_id": t["txn_id"], "kind": "adjustment", "source_id": t["txn_id"],
                                "at": t["initiated_at"], "amount_home": t["amount"]})
        if t["fee"]:
            f.fees.append({"bt_id": t["txn_id"], "at": t["initiated_at"], "fee": t["fee"]})
    return f
