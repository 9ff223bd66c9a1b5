"""The oracle: the expected finance figures, computed from the sandbox world in plain Python.

It reads the world's *truth* tables (what happened, as the generator recorded it) — never the
emulators' payloads or the warehouse — and applies the accounting policy of docs/decisions.md
with `Decimal` arithmetic.  Tests compare every row of the marts with it, to the cent.  Because
it shares no code with the dbt models, an error in either shows up as a difference.

Visibility follows the clock exactly as the emulators render it: an order exists once placed,
a refund once made, a payout once paid out, and so on.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable

from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.sandbox.world import business_date as _bdate
from finance_pipeline.sandbox.world import invoice_number
from finance_pipeline.sandbox.world import q as _q

ZERO = Decimal("0.00")


def _money_div(num: Decimal, den: Decimal) -> Decimal:
    return _q(num / den)


def _bmonth(ts: datetime) -> date:
    d = _bdate(ts)
    return date(d.year, d.month, 1)


def _minor(amount: int) -> Decimal:
    return _q(Decimal(amount) / 100)


@dataclass
class Oracle:
    """Expected marts keyed by their primary keys: {mart: {key: {column: value}}}."""

    clock: datetime
    marts: dict[str, dict[Any, dict[str, Any]]]

    def rows(self, mart: str) -> dict[Any, dict[str, Any]]:
        return self.marts[mart]


def _fetch(con, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def compute(sandbox: Sandbox) -> Oracle:
    clock = sandbox.clock
    con = sandbox.connect()
    try:
        return Oracle(clock, _compute(con, clock))
    finally:
        con.close()


def _compute(con, clock: datetime) -> dict[str, dict]:
    T = [clock]
    orders = _fetch(con, "select * from shopify_orders where created_at <= ?", T)
    lines = _fetch(con, "select * from shopify_order_lines where coalesce(added_at, '-infinity') <= ?", T)
    refunds = _fetch(con, "select * from shopify_refunds where created_at <= ?", T)
    refund_lines = _fetch(con, """select rl.* from shopify_refund_lines rl join shopify_refunds r using (refund_id)
                                  where r.created_at <= ?""", T)
    shop_bts = _fetch(con, "select * from shopify_balance_transactions where processed_at <= ?", T)
    shop_payouts = _fetch(con, "select * from shopify_payouts where visible_at <= ?", T)
    charges = _fetch(con, "select * from stripe_charges where created <= ?", T)
    s_refunds = _fetch(con, "select * from stripe_refunds where created <= ?", T)
    s_bts = _fetch(con, "select * from stripe_balance_transactions where created <= ?", T)
    s_payouts = _fetch(con, "select * from stripe_payouts where created <= ?", T)
    customers = {c["customer_id"]: c for c in _fetch(con, "select * from customers")}
    line_rates = {r["owner_id"]: r["rate"] for r in _fetch(
        con, "select owner_id, sum(rate) as rate from shopify_tax_lines where owner = 'line' group by owner_id")}

    as_of = _bdate(clock)
    order_by_id = {o["order_id"]: o for o in orders}
    lines_by_order: dict[int, list[dict]] = defaultdict(list)
    for line in lines:
        if line["order_id"] in order_by_id:
            lines_by_order[line["order_id"]].append(line)
    line_by_id = {l["line_id"]: l for l in lines}
    rlines_by_refund: dict[int, list[dict]] = defaultdict(list)
    for rl in refund_lines:
        rlines_by_refund[rl["refund_id"]].append(rl)

    def is_void(o: dict) -> bool:
        return o["kind"] == "trade" and o["cancelled_at"] is not None and o["cancelled_at"] <= clock

    # ---- refunds ------------------------------------------------------------------------
    fct_refunds = {}
    refunds_by_order: dict[int, list[dict]] = defaultdict(list)
    for r in refunds:
        o = order_by_id[r["order_id"]]
        incl = o["taxes_included"]
        goods = goods_tax = goods_h = goods_tax_h = cogs_rev = ZERO
        for rl in rlines_by_refund[r["refund_id"]]:
            goods += rl["subtotal"] - rl["total_tax"] if incl else rl["subtotal"]
            goods_tax += rl["total_tax"]
            goods_h += rl["subtotal_shop"] - rl["total_tax_shop"] if incl else rl["subtotal_shop"]
            goods_tax_h += rl["total_tax_shop"]
            if rl["restock_type"] == "return":
                cogs_rev += line_by_id[rl["line_id"]]["unit_cost_gbp"] * rl["quantity"]
        row = {
            "goods_amount": goods, "shipping_amount": r["shipping_amount"],
            "tax_amount": goods_tax + r["shipping_tax"],
            "total_amount": goods + r["shipping_amount"] + goods_tax + r["shipping_tax"],
            "goods_amount_home": goods_h, "shipping_amount_home": r["shipping_amount_shop"],
            "tax_amount_home": goods_tax_h + r["shipping_tax_shop"],
            "cogs_reversal_home": _q(cogs_rev), "refunded_at": r["created_at"], "order_id": str(r["order_id"]),
        }
        row["total_amount_home"] = row["goods_amount_home"] + row["shipping_amount_home"] + row["tax_amount_home"]
        fct_refunds[("shopify", str(r["refund_id"]))] = row
        refunds_by_order[r["order_id"]].append(row)

    # ---- orders and lines ------------------------------------------------------------------
    fct_orders = {}
    fct_order_lines = {}
    for o in orders:
        incl = o["taxes_included"]
        gross = disc = net = tax = gross_h = disc_h = net_h = tax_h = cogs = ZERO
        for line in lines_by_order[o["order_id"]]:
            list_amt = line["price"] * line["quantity"]
            list_h = line["price_shop"] * line["quantity"]
            rate = line_rates.get(line["line_id"], ZERO)
            l_gross = _money_div(list_amt, 1 + rate) if incl else list_amt
            l_gross_h = _money_div(list_h, 1 + rate) if incl else list_h
            l_net = list_amt - line["discount"] - (line["tax"] if incl else ZERO)
            l_net_h = list_h - line["discount_shop"] - (line["tax_shop"] if incl else ZERO)
            l_cogs = _q(line["unit_cost_gbp"] * line["quantity"])
            fct_order_lines[("shopify", str(line["line_id"]))] = {
                "gross_amount": l_gross, "discount_amount": l_gross - l_net, "net_amount": l_net,
                "tax_amount": line["tax"], "gross_amount_home": l_gross_h,
                "discount_amount_home": l_gross_h - l_net_h, "net_amount_home": l_net_h,
                "tax_amount_home": line["tax_shop"], "cogs_home": l_cogs, "quantity": line["quantity"],
            }
            gross += l_gross; disc += l_gross - l_net; net += l_net; tax += line["tax"]
            gross_h += l_gross_h; disc_h += l_gross_h - l_net_h; net_h += l_net_h; tax_h += line["tax_shop"]
            cogs += l_cogs
        ship = o["shipping_price"] - o["shipping_tax"] if incl else o["shipping_price"]
        ship_h = o["shipping_price_shop"] - o["shipping_tax_shop"] if incl else o["shipping_price_shop"]
        rs = refunds_by_order[o["order_id"]]
        refunded = sum((r["goods_amount"] for r in rs), ZERO)
        refunded_h = sum((r["goods_amount_home"] for r in rs), ZERO)
        total = net + ship + tax + o["shipping_tax"]
        fct_orders[("shopify", str(o["order_id"]))] = {
            "gross_amount": gross, "discount_amount": disc, "shipping_amount": ship,
            "tax_amount": tax + o["shipping_tax"], "total_amount": total,
            "refunded_amount": refunded,
            "refunded_shipping_amount": sum((r["shipping_amount"] for r in rs), ZERO),
            "refunded_tax_amount": sum((r["tax_amount"] for r in rs), ZERO),
            "net_amount": gross - disc - refunded,
            "gross_amount_home": gross_h, "discount_amount_home": disc_h, "shipping_amount_home": ship_h,
            "tax_amount_home": tax_h + o["shipping_tax_shop"],
            "total_amount_home": net_h + ship_h + tax_h + o["shipping_tax_shop"],
            "refunded_amount_home": refunded_h, "net_amount_home": gross_h - disc_h - refunded_h,
            "cogs_home": cogs, "cogs_reversed_home": sum((r["cogs_reversal_home"] for r in rs), ZERO),
            "is_void": is_void(o), "customer_type": o["kind"], "currency": o["currency"],
            "ordered_at": o["created_at"],
        }

    # ---- payments -------------------------------------------------------------------------------
    fct_payments = {}
    for bt in shop_bts:
        if bt["type"] == "charge":
            fct_payments[("shopify", str(bt["txn_id"]))] = {
                "status": "succeeded", "amount": bt["amount"], "amount_home": bt["amount"], "fee_home": bt["fee"],
                "currency": "GBP",
            }
    s_bt_by_id = {bt["bt_id"]: bt for bt in s_bts}
    for c in charges:
        bt = s_bt_by_id.get(c["balance_transaction"]) if c["balance_transaction"] else None
        fct_payments[("stripe", c["charge_id"])] = {
            "status": c["status"], "amount": _minor(c["amount"]), "currency": c["currency"].upper(),
            "amount_home": _minor(bt["amount"]) if bt else None, "fee_home": _minor(bt["fee"]) if bt else None,
        }

    # ---- payouts and reconciliation -------------------------------------------------------------
    fct_payouts = {}
    recon = {}
    shop_visible = {p["payout_id"] for p in shop_payouts}
    bts_by_payout: dict[Any, list[dict]] = defaultdict(list)
    for bt in shop_bts:
        if bt["payout_id"] in shop_visible:
            bts_by_payout[("shopify", str(bt["payout_id"]))].append(
                {"type": bt["type"], "amount": bt["amount"], "fee": bt["fee"], "net": bt["net"], "order": bt["order_id"]})
    for p in shop_payouts:
        fct_payouts[("shopify", str(p["payout_id"]))] = {"amount": p["amount"], "status": "paid", "payout_date": p["payout_date"]}
    s_visible = {p["payout_id"] for p in s_payouts}
    for bt in s_bts:
        if bt["payout_id"] in s_visible and bt["type"] != "payout":
            bts_by_payout[("stripe", bt["payout_id"])].append(
                {"type": bt["type"], "amount": _minor(bt["amount"]), "fee": _minor(bt["fee"]),
                 "net": _minor(bt["net"]), "order": None})
    for p in s_payouts:
        fct_payouts[("stripe", p["payout_id"])] = {
            "amount": _minor(p["amount"]), "status": "paid" if p["arrival_date"] <= clock else "in_transit",
            "payout_date": p["arrival_date"].date(),
        }
    for key, payout in fct_payouts.items():
        txns = bts_by_payout.get(key, [])
        net = sum((t["net"] for t in txns), ZERO)
        recon[key] = {
            "payout_amount": payout["amount"],
            "charges_gross": sum((t["amount"] for t in txns if t["type"] == "charge"), ZERO),
            "refunds_gross": sum((t["amount"] for t in txns if t["type"] == "refund"), ZERO),
            "adjustments": sum((t["amount"] for t in txns if t["type"] not in ("charge", "refund")), ZERO),
            "fees": sum((t["fee"] for t in txns), ZERO),
            "transactions_net": net, "variance": payout["amount"] - net, "transaction_count": len(txns),
            "reconciliation_status": "matched" if txns and payout["amount"] == net else "break",
        }

    # ---- trade invoices and outstanding balances -----------------------------------------------
    paid_by_invoice: dict[str, Decimal] = defaultdict(lambda: ZERO)
    last_paid: dict[str, datetime] = {}
    charge_by_id = {c["charge_id"]: c for c in charges}
    for c in charges:
        if c["status"] == "succeeded":
            paid_by_invoice[c["invoice_number"]] += _minor(c["amount"])
            last_paid[c["invoice_number"]] = max(last_paid.get(c["invoice_number"], c["created"]), c["created"])
    for r in s_refunds:
        paid_by_invoice[charge_by_id[r["charge_id"]]["invoice_number"]] -= _minor(r["amount"])
    fct_invoices = {}
    for o in orders:
        if o["kind"] != "trade":
            continue
        f = fct_orders[("shopify", str(o["order_id"]))]
        number = invoice_number(o["name"])
        void = f["is_void"]
        total, paid = f["total_amount"], paid_by_invoice[number]
        open_amt = ZERO if void else total - paid
        if void:
            status = "voided"
        elif open_amt < 0:
            status = "overpaid"
        elif open_amt == 0:
            status = "paid"
        elif o["due_on"] < as_of:
            status = "overdue"
        elif paid > 0:
            status = "partially_paid"
        else:
            status = "unpaid"
        open_home = ZERO if void or total == 0 else _money_div(open_amt * f["total_amount_home"], total)
        fct_invoices[number] = {
            "customer_id": str(o["shopify_customer_id"]), "currency": o["currency"], "due_on": o["due_on"],
            "issued_on": _bdate(o["created_at"]), "subtotal_amount": total - f["tax_amount"],
            "tax_amount": f["tax_amount"], "total_amount": total, "paid_amount": paid, "open_amount": open_amt,
            "status": status, "total_amount_home": f["total_amount_home"], "open_amount_home": open_home,
            "days_past_due": max(0, (as_of - o["due_on"]).days), "last_paid_at": last_paid.get(number),
            "customer_name": customers[o["customer_id"]]["company"],
        }
    outstanding: dict[str, dict] = {}
    for number, inv in fct_invoices.items():
        if inv["status"] == "voided":
            continue
        row = outstanding.setdefault(inv["customer_id"], {
            "invoice_count": 0, "open_invoice_count": 0, "invoiced_amount": ZERO, "paid_amount": ZERO,
            "open_amount": ZERO, "open_amount_home": ZERO, "current_home": ZERO, "days_1_30_home": ZERO,
            "days_31_60_home": ZERO, "days_61_90_home": ZERO, "days_over_90_home": ZERO,
            "unapplied_credit_home": ZERO, "max_days_past_due": 0, "oldest_bucket": None,
        })
        row["invoice_count"] += 1
        row["open_invoice_count"] += inv["open_amount"] != 0
        row["invoiced_amount"] += inv["total_amount"]
        row["paid_amount"] += inv["paid_amount"]
        row["open_amount"] += inv["open_amount"]
        row["open_amount_home"] += inv["open_amount_home"]
        dpd = inv["days_past_due"]
        if inv["open_amount_home"] <= 0:
            bucket = "unapplied_credit_home"
        elif dpd <= 0:
            bucket = "current_home"
        elif dpd <= 30:
            bucket = "days_1_30_home"
        elif dpd <= 60:
            bucket = "days_31_60_home"
        elif dpd <= 90:
            bucket = "days_61_90_home"
        else:
            bucket = "days_over_90_home"
        row[bucket] += inv["open_amount_home"]
        if inv["open_amount"] > 0:
            row["max_days_past_due"] = max(row["max_days_past_due"], dpd)
    order_of = ["current_home", "days_1_30_home", "days_31_60_home", "days_61_90_home", "days_over_90_home"]
    names = {"current_home": "current", "days_1_30_home": "1-30", "days_31_60_home": "31-60",
             "days_61_90_home": "61-90", "days_over_90_home": "90+"}
    # oldest bucket: the oldest bucket holding any positive open invoice
    for number, inv in fct_invoices.items():
        if inv["status"] == "voided" or inv["open_amount_home"] <= 0:
            continue
        dpd = inv["days_past_due"]
        b = ("current_home" if dpd <= 0 else "days_1_30_home" if dpd <= 30 else "days_31_60_home" if dpd <= 60
             else "days_61_90_home" if dpd <= 90 else "days_over_90_home")
        row = outstanding[inv["customer_id"]]
        if row["oldest_bucket"] is None or order_of.index(b) > order_of.index(row["oldest_bucket"]):
            row["oldest_bucket"] = b
    for row in outstanding.values():
        row["oldest_bucket"] = names.get(row["oldest_bucket"]) if row["oldest_bucket"] else None

    # ---- profit and loss -----------------------------------------------------------------------
    pnl: dict[tuple[str, date], dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for key, f in fct_orders.items():
        if f["is_void"]:
            continue
        row = pnl[("shopify", _bmonth(f["ordered_at"]))]
        row["orders"] += 1
        row["gross_sales"] += f["gross_amount_home"]
        row["discounts"] += f["discount_amount_home"]
        row["shipping_income"] += f["shipping_amount_home"]
        row["cogs"] += f["cogs_home"]
    for r in fct_refunds.values():
        row = pnl[("shopify", _bmonth(r["refunded_at"]))]
        row["refunds"] += r["goods_amount_home"]
        row["shipping_income"] -= r["shipping_amount_home"]
        row["cogs"] -= r["cogs_reversal_home"]
    for bt in shop_bts:
        pnl[("shopify", _bmonth(bt["processed_at"]))]["fees"] += bt["fee"]
    for bt in s_bts:
        pnl[("stripe", _bmonth(bt["created"]))]["fees"] += _minor(bt["fee"])
    rpt_pnl = {}
    for key, row in pnl.items():
        net_sales = row["gross_sales"] - row["discounts"] - row["refunds"]
        margin = net_sales - row["cogs"]
        rpt_pnl[key] = {
            "orders": int(row["orders"]), "gross_sales": row["gross_sales"], "discounts": row["discounts"],
            "refunds": row["refunds"], "net_sales": net_sales, "shipping_income": row["shipping_income"],
            "cogs": row["cogs"], "gross_margin": margin, "fees": row["fees"],
            "contribution": margin + row["shipping_income"] - row["fees"],
        }

    return {
        "fct_orders": fct_orders, "fct_order_lines": fct_order_lines, "fct_refunds": fct_refunds,
        "fct_payments": fct_payments, "fct_payouts": fct_payouts, "rpt_payout_reconciliation": recon,
        "fct_invoices": fct_invoices, "rpt_outstanding_balances": outstanding, "rpt_profit_and_loss": rpt_pnl,
    }

