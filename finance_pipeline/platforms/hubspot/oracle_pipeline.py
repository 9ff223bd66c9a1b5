"""Oracle of `marts.rpt_pipeline_to_cash`, computed in Python from the world tables.

Each CRM's deals as of the clock (last version at or before it; deleted ones left out) from
`hubspot_*` / `salesforce_*`, joined to the trade invoices as the core oracle computes them from
the Shopify trade orders and Stripe charges (`sandbox.oracle._compute(con, clock)['fct_invoices']`,
without the ledger extension this mart does not need);
never the warehouse or the emulators' payloads.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from finance_pipeline.sandbox import oracle as core
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.sandbox.world import q

ZERO = Decimal("0.00")
CRMS = {"hubspot": ("closedwon", "closedlost"), "salesforce": ("Closed Won", "Closed Lost")}


def deals_as_of(con, crm: str, clock: datetime) -> list[dict[str, Any]]:
    """The live deals of `crm` at `clock`, each with its current version's fields."""
    deals = {d["deal_id"]: d for d in core._fetch(con, f"select * from {crm}_deals")}
    current: dict[str, dict] = {}
    for v in core._fetch(con, f"select * from {crm}_deal_versions"):
        seen = current.get(v["deal_id"])
        if v["valid_from"] <= clock and (seen is None or v["version"] > seen["version"]):
            current[v["deal_id"]] = v
    out = []
    for deal_id, d in deals.items():
        if d["created_at"] > clock or deal_id not in current or (d["deleted_at"] and d["deleted_at"] <= clock):
            continue
        out.append({**d, **{k: current[deal_id][k] for k in ("stage", "amount", "close_date", "invoice_number",
                                                             "valid_from")}})
    return out


def expected(sandbox: Sandbox) -> dict[tuple[str, str], dict[str, Any]]:
    clock = sandbox.clock
    con = sandbox.connect()
    try:
        invoices = core._compute(con, clock)["fct_invoices"]
        rows = {}
        for crm, (won, lost) in CRMS.items():
            for d in deals_as_of(con, crm, clock):
                inv = invoices.get(d["invoice_number"]) if d["invoice_number"] else None
                is_won, is_closed = d["stage"] == won, d["stage"] in (won, lost)
                voided = inv is not None and inv["status"] == "voided"
                invoiced = inv["total_amount"] if inv is not None and not voided else ZERO
                paid = inv["paid_amount"] if inv is not None else ZERO
                if not is_closed:
                    status = "open"
                elif not is_won:
                    status = "lost"
                elif inv is None:
                    status = "won_not_invoiced"
                elif voided:
                    status = "voided"
                elif paid >= invoiced:
                    status = "paid"
                elif paid > 0:
                    status = "partially_paid"
                else:
                    status = "invoiced_unpaid"
                live = inv is not None and not voided
                rows[(crm, d["deal_id"])] = {
                    "crm": crm, "deal_id": d["deal_id"], "deal_name": d["name"], "customer_id": d["customer_id"],
                    "customer_name": d["company"], "stage": d["stage"], "is_won": is_won, "is_closed": is_closed,
                    "close_date": d["close_date"], "currency": d["currency"], "deal_amount": d["amount"],
                    "invoice_number": d["invoice_number"], "invoice_status": inv["status"] if inv else None,
                    "invoiced_amount": invoiced, "paid_amount": paid,
                    "open_amount": inv["open_amount"] if inv is not None else ZERO,
                    "amount_difference": invoiced - d["amount"] if is_won else None,
                    "pipeline_status": status,
                    "invoiced_amount_home": inv["total_amount_home"] if live else None,
                    "paid_amount_home": (q(paid * inv["total_amount_home"] / inv["total_amount"])
                                         if live and inv["total_amount"] != 0 else ZERO if inv is not None else None),
                    "open_amount_home": inv["open_amount_home"] if inv is not None else None,
                    "updated_at": max(d["valid_from"], d["created_at"]),
                }
        return rows
    finally:
        con.close()
