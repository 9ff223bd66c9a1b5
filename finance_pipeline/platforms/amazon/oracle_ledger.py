"""Amazon's ledger facts for the oracle's GL, tax and payment-status marts
(`finance_pipeline/sandbox/oracle_ledger.py` explains each kind).

Amazon has no payment objects: every financial event component is a movement of the Amazon
balance (clearing, paid out per settlement).  A shipment's charge components (principal, tax, and
the marketplace-facilitator tax Amazon withholds, negative) settle the order; a refund's components
give money back; fees are fees.  US sales tax Amazon collects and remits itself is marketplace tax
(scenario S10): left out of receivables and tax payable.  Money converts to GBP at Amazon's own
settlement conversion (`oracle.HomeRates`), as of two minutes before the clock like the API.

Component ids follow the wire: the balance transaction id of a component is the event's natural
key (kind, order, posted time, item), its list, its type and its place in that list, which is what
the source builds from the Finances API payload; nothing here reads a payload.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from finance_pipeline.platforms.amazon import VISIBLE_DELAY_S
from finance_pipeline.platforms.amazon.oracle import HomeRates, component_money, settlements
from finance_pipeline.sandbox.oracle_ledger import LedgerFacts, _fetch

ZERO = Decimal("0.00")
KIND = {"ShipmentEvent": "charge", "RefundEvent": "refund", "ServiceFeeEvent": "fee"}


def _component_ids(lines: list[dict]) -> dict[int, str]:
    """line_id -> the balance transaction id the pipeline gives that component."""
    out: dict[int, str] = {}
    place: dict[tuple, int] = defaultdict(int)
    fee_events: dict[str, dict[str, int]] = defaultdict(dict)  # group -> event key -> occurrence
    for r in sorted(lines, key=lambda r: (r["group_id"], r["posted_at"], r["line_id"])):
        if r["event_type"] == "ServiceFeeEvent":
            seen = fee_events[r["group_id"]]
            occurrence = seen.setdefault(r["event_key"], len(seen))
            key = f"ServiceFeeEvent|{r['group_id']}|{occurrence}"
        else:
            item = r["adjustment_id"] if r["event_type"] == "RefundEvent" else r["order_item_id"]
            posted = r["posted_at"].astimezone(timezone.utc).replace(microsecond=0).isoformat()
            key = f"{r['event_type']}|{r['order_id']}|{posted}|{item}"
        j = place[(key, r["list_name"])]
        place[(key, r["list_name"])] += 1
        out[r["line_id"]] = "|".join((key, r["list_name"], r["component_type"], str(j)))
    return out


def facts(con, clock: datetime) -> LedgerFacts:
    visible = clock - timedelta(seconds=VISIBLE_DELAY_S)
    f = LedgerFacts("amazon")
    groups, _ = settlements(con, visible)
    rates = HomeRates(groups)
    group_start = {g["group_id"]: g["start_at"] for g in groups}
    orders = {o["order_id"]: o for o in _fetch(con, "select * from amazon_orders where purchase_at <= ?", [visible])}
    # the tax Amazon remits itself, per line and converted per line like the line's own tax, so a
    # facilitator order leaves exactly nothing in tax payable
    mp_tax: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for item in _fetch(con, """select i.order_item_id, i.order_id, i.quantity, i.item_tax, i.marketplace_facilitator,
                                      p.category, p.unit
                               from amazon_order_items i join amazon_orders o using (order_id)
                               join products p using (sku) where o.purchase_at <= ?""", [visible]):
        f.lines[item["order_item_id"]] = {
            "order_id": item["order_id"], "category": item["category"],
            "metres": Decimal(item["quantity"]) * Decimal("0.1") if item["unit"] == "10cm" else None}
        if item["marketplace_facilitator"]:
            o = orders[item["order_id"]]
            mp_tax[item["order_id"]][0] += item["item_tax"]
            mp_tax[item["order_id"]][1] += rates.home(o["marketplace"], o["currency"], item["item_tax"], o["purchase_at"])
    for oid, o in orders.items():
        mp, mp_home = mp_tax.get(oid, (ZERO, ZERO))
        f.orders[oid] = {
            "tax_treatment": o["tax_treatment"], "country": o["country"], "region": o["region"],
            "order_number": oid, "invoice_number": None,
            "marketplace_tax_amount": mp, "marketplace_tax_amount_home": mp_home,
        }
    for r in _fetch(con, "select r.*, o.marketplace from amazon_refunds r join amazon_orders o using (order_id) "
                         "where r.posted_at <= ?", [visible]):
        if r["marketplace_facilitator"]:
            f.refund_marketplace_tax[r["refund_id"]] = (
                r["tax"], rates.home(r["marketplace"], r["currency"], r["tax"], r["posted_at"]))
    lines = _fetch(con, "select * from amazon_event_lines where posted_at <= ?", [visible])
    ids = _component_ids(lines)
    for line in lines:
        bt_id = ids[line["line_id"]]
        kind = KIND[line["event_type"]]
        at = group_start[line["group_id"]] if kind == "fee" else line["posted_at"]
        amount, fee, _ = component_money(line["list_name"], line["amount"])
        home = rates.home(line["marketplace"], line["currency"], amount, at)
        if fee:
            f.fees.append({"bt_id": bt_id, "at": at, "fee": rates.home(line["marketplace"], line["currency"], fee, at)})
        doc = ("amazon", line["order_id"]) if line["order_id"] in orders else None
        if kind == "charge" and line["order_id"] and amount != 0:
            f.settlements.append({"source_type": "payment", "source_id": bt_id, "bt_id": bt_id, "at": at, "doc": doc,
                                  "currency": line["currency"], "amount": amount, "amount_home": home})
            f.attempts.append({"payment_id": bt_id, "status": "succeeded", "at": at, "doc": doc, "amount_home": home,
                               "dispute_open": False, "dispute_lost": False, "disputed": False})
        elif kind == "refund":
            f.settlements.append({"source_type": "payment_refund", "source_id": bt_id, "bt_id": bt_id, "at": at,
                                  "doc": doc, "currency": None, "amount": None, "amount_home": home})
        elif kind not in ("charge", "refund") and amount != 0:
            f.movements.append({"bt_id": bt_id, "kind": "adjustment", "source_id": bt_id, "at": at,
                                "amount_home": home})
    return f
