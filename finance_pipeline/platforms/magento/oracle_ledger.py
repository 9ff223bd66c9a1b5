"""Magento's ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

The gateways capture each order when it is placed and pay credit memos back; their fees and
payouts are not visible through Magento, so the channel's movements are the capture
(`charge-<order>`) and each credit memo (`refund-<memo>`), in GBP, with no fees or disputes.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from finance_pipeline.sandbox.oracle_ledger import LedgerFacts, _fetch


def facts(con, clock: datetime) -> LedgerFacts:
    T = [clock]
    f = LedgerFacts("magento")
    for o in _fetch(con, "select * from magento_orders where created_at <= ?", T):
        oid = str(o["entity_id"])
        f.orders[oid] = {"tax_treatment": "uk_vat", "country": o["country"], "region": None,
                         "order_number": o["increment_id"], "invoice_number": None}
        paid = o["paid_at"] is not None and o["paid_at"] <= clock
        canceled = o["canceled_at"] is not None and o["canceled_at"] <= clock
        if paid or canceled:
            f.attempts.append({"payment_id": oid, "status": "succeeded" if paid else "failed",
                               "at": o["created_at"] if paid else o["canceled_at"], "doc": ("magento", oid),
                               "amount_home": o["grand_total"], "dispute_open": False, "dispute_lost": False,
                               "disputed": False})
        if paid:
            f.settlements.append({"source_type": "payment", "source_id": oid, "bt_id": f"charge-{oid}",
                                  "at": o["created_at"], "doc": ("magento", oid), "currency": o["currency"],
                                  "amount": o["grand_total"], "amount_home": o["grand_total"]})
    for m in _fetch(con, "select * from magento_creditmemos where created_at <= ?", T):
        bt = f"refund-{m['entity_id']}"
        f.settlements.append({"source_type": "payment_refund", "source_id": bt, "bt_id": bt, "at": m["created_at"],
                              "doc": ("magento", str(m["order_id"])), "currency": None, "amount": None,
                              "amount_home": -m["grand_total"]})
    for line in _fetch(con, """select i.item_id, i.order_id, i.qty, p.category, p.unit
                               from magento_order_items i join magento_orders o on o.entity_id = i.order_id
                               join products p using (sku) where o.created_at <= ?""", T):
        f.lines[str(line["item_id"])] = {
            "order_id": str(line["order_id"]), "category": line["category"],
            "metres": Decimal(line["qty"]) * Decimal("0.1") if line["unit"] == "10cm" else None,
        }
    return f
