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
from dataclasses import dataclass, field
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


@dataclass
class Canonical:
    """One channel's truth in the shape the marts share (docs/architecture.md, "Channel kit").

    Money is `Decimal` in major units; `*_home` in GBP at the platform's own conversion. Rows
    carry `channel`; ids are text. A channel's oracle hook returns one of these, built from its
    world tables as of the clock; the marts every channel shares are assembled from them by
    `assemble`, so the accounting policy is written once.

    orders: order_id, customer_type ('retail' | 'trade'), currency, ordered_at, is_void,
        shipping_amount, shipping_tax, shipping_amount_home, shipping_tax_home (shipping ex tax);
        optional gift_card_amount, gift_card_amount_home: gift cards sold on the order (scenario
        S12: a liability, not sales; their lines are not in `lines`); optional tax_rounding,
        tax_rounding_home: the line and shipping tax less the platform's order-level tax (S13: tax
        rounded once per order; the order's tax owed is the lines' less this, the rest is rounding)
    lines: order_id, line_id, quantity, gross_amount, net_amount, tax_amount (ex-tax gross and
        net; discount = gross - net), the three `_home` twins, cogs_home
    refunds: refund_id, order_id, refunded_at, goods_amount, shipping_amount, tax_amount (ex tax,
        positive), the three `_home` twins, cogs_reversal_home
    payments: payment_id, status, amount, currency, amount_home, fee_home
    payouts: payout_id, amount, status, payout_date (and amount_home when paid out in another
        currency than GBP: what reached the bank); payout_transactions: payout_id, type
        ('charge' | 'refund' | anything else counts as an adjustment), amount, fee, net
    fees: at, fee_home — processor / marketplace fees, booked in the P&L month of `at`
    invoices (a ledger channel's own trade invoices; its orders have customer_type 'trade'):
        order_id, invoice_number ('INV-' + order number), customer_id, customer_name, issued_on,
        due_on; what pays them are its payments carrying `invoice_number` (and optionally
        `refunded_amount`, `attempted_at`), e.g. bank transfers the bookkeeper recorded
    """

    channel: str
    orders: list[dict] = field(default_factory=list)
    lines: list[dict] = field(default_factory=list)
    refunds: list[dict] = field(default_factory=list)
    payments: list[dict] = field(default_factory=list)
    payouts: list[dict] = field(default_factory=list)
    payout_transactions: list[dict] = field(default_factory=list)
    fees: list[dict] = field(default_factory=list)
    invoices: list[dict] = field(default_factory=list)


def compute(sandbox: Sandbox) -> Oracle:
    clock = sandbox.clock
    con = sandbox.connect()
    try:
        from finance_pipeline.sandbox import oracle_ledger  # GL, tax, payment status, trends, AR detail

        return Oracle(clock, oracle_ledger.extend(con, clock, _compute(con, clock)))
    finally:
        con.close()


def _channel_canonicals(con, clock: datetime) -> list[Canonical]:
    from finance_pipeline.platforms import registry

    return [registry.Platform.load(p.oracle)(con, clock) for p in registry.PLATFORMS if p.oracle]


def assemble(canonicals: Iterable[Canonical]) -> dict[str, dict]:
    """The channel-shared marts from every channel's canonical rows."""
    fct_orders: dict[Any, dict] = {}
    fct_order_lines: dict[Any, dict] = {}
    fct_refunds: dict[Any, dict] = {}
    fct_payments: dict[Any, dict] = {}
    fct_payouts: dict[Any, dict] = {}
    recon: dict[Any, dict] = {}
    pnl: dict[tuple[str, date], dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for c in canonicals:
        ch = c.channel
        refunds_by_order: dict[str, list[dict]] = defaultdict(list)
        for r in c.refunds:
            row = {k: r[k] for k in (
                "goods_amount", "shipping_amount", "tax_amount", "goods_amount_home", "shipping_amount_home",
                "tax_amount_home", "cogs_reversal_home", "refunded_at", "order_id")}
            row["total_amount"] = r["goods_amount"] + r["shipping_amount"] + r["tax_amount"]
            row["total_amount_home"] = r["goods_amount_home"] + r["shipping_amount_home"] + r["tax_amount_home"]
            fct_refunds[(ch, r["refund_id"])] = row
            refunds_by_order[r["order_id"]].append(row)
            p = pnl[(ch, _bmonth(r["refunded_at"]))]
            p["refunds"] += r["goods_amount_home"]
            p["shipping_income"] -= r["shipping_amount_home"]
            p["cogs"] -= r["cogs_reversal_home"]
        lines_by_order: dict[str, list[dict]] = defaultdict(list)
        for line in c.lines:
            lines_by_order[line["order_id"]].append(line)
            fct_order_lines[(ch, line["line_id"])] = {
                "gross_amount": line["gross_amount"], "discount_amount": line["gross_amount"] - line["net_amount"],
                "net_amount": line["net_amount"], "tax_amount": line["tax_amount"],
                "gross_amount_home": line["gross_amount_home"],
                "discount_amount_home": line["gross_amount_home"] - line["net_amount_home"],
                "net_amount_home": line["net_amount_home"], "tax_amount_home": line["tax_amount_home"],
                "cogs_home": line["cogs_home"], "quantity": line["quantity"],
            }
        for o in c.orders:
            ls = lines_by_order[o["order_id"]]
            gross, net, tax = (sum((l[k] for l in ls), ZERO) for k in ("gross_amount", "net_amount", "tax_amount"))
            gross_h, net_h, tax_h = (sum((l[k] for l in ls), ZERO)
                                     for k in ("gross_amount_home", "net_amount_home", "tax_amount_home"))
            cogs = sum((l["cogs_home"] for l in ls), ZERO)
            rs = refunds_by_order[o["order_id"]]
            refunded = sum((r["goods_amount"] for r in rs), ZERO)
            refunded_h = sum((r["goods_amount_home"] for r in rs), ZERO)
            ship, ship_h = o["shipping_amount"], o["shipping_amount_home"]
            card, card_h = o.get("gift_card_amount", ZERO), o.get("gift_card_amount_home", ZERO)
            # the order's tax is the platform's order-level figure; its lines' tax beyond it is rounding (S13)
            rnd, rnd_h = o.get("tax_rounding", ZERO), o.get("tax_rounding_home", ZERO)
            row = {
                "gross_amount": gross, "discount_amount": gross - net, "shipping_amount": ship,
                "tax_amount": tax + o["shipping_tax"] - rnd, "tax_rounding_amount": rnd,
                "total_amount": net + ship + tax + o["shipping_tax"] + card,
                "gift_card_amount": card, "gift_card_amount_home": card_h,
                "refunded_amount": refunded,
                "refunded_shipping_amount": sum((r["shipping_amount"] for r in rs), ZERO),
                "refunded_tax_amount": sum((r["tax_amount"] for r in rs), ZERO),
                "net_amount": net - refunded,
                "gross_amount_home": gross_h, "discount_amount_home": gross_h - net_h, "shipping_amount_home": ship_h,
                "tax_amount_home": tax_h + o["shipping_tax_home"] - rnd_h, "tax_rounding_amount_home": rnd_h,
                "total_amount_home": net_h + ship_h + tax_h + o["shipping_tax_home"] + card_h,
                "refunded_amount_home": refunded_h, "net_amount_home": net_h - refunded_h,
                "cogs_home": cogs, "cogs_reversed_home": sum((r["cogs_reversal_home"] for r in rs), ZERO),
                "is_void": o["is_void"], "customer_type": o["customer_type"], "currency": o["currency"],
                "ordered_at": o["ordered_at"],
            }
            fct_orders[(ch, o["order_id"])] = row
            if not row["is_void"]:
                p = pnl[(ch, _bmonth(o["ordered_at"]))]
                p["orders"] += 1
                p["gross_sales"] += gross_h
                p["discounts"] += gross_h - net_h
                p["shipping_income"] += ship_h
                p["cogs"] += cogs
        for pay in c.payments:
            fct_payments[(ch, pay["payment_id"])] = {
                k: pay[k] for k in ("status", "amount", "currency", "amount_home", "fee_home")}
        txns_by_payout: dict[str, list[dict]] = defaultdict(list)
        for t in c.payout_transactions:
            txns_by_payout[t["payout_id"]].append(t)
        for po in c.payouts:
            key = (ch, po["payout_id"])
            fct_payouts[key] = {"amount": po["amount"], "status": po["status"], "payout_date": po["payout_date"],
                                **({"amount_home": po["amount_home"]} if "amount_home" in po else {})}
            txns = txns_by_payout.get(po["payout_id"], [])
            net = sum((t["net"] for t in txns), ZERO)
            recon[key] = {
                "payout_amount": po["amount"],
                "charges_gross": sum((t["amount"] for t in txns if t["type"] == "charge"), ZERO),
                "refunds_gross": sum((t["amount"] for t in txns if t["type"] == "refund"), ZERO),
                "adjustments": sum((t["amount"] for t in txns if t["type"] not in ("charge", "refund")), ZERO),
                "fees": sum((t["fee"] for t in txns), ZERO),
                "transactions_net": net, "variance": po["amount"] - net, "transaction_count": len(txns),
                "reconciliation_status": "matched" if txns and po["amount"] == net else "break",
            }
        for f in c.fees:
            pnl[(ch, _bmonth(f["at"]))]["fees"] += f["fee_home"]
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
        "rpt_profit_and_loss": rpt_pnl,
    }


def _shopify(con, clock: datetime) -> tuple[Canonical, list[dict]]:
    """Shopify orders (tax-inclusive or not, shop money for home), refunds and Shopify Payments."""
    T = [clock]
    orders = _fetch(con, "select * from shopify_orders where created_at <= ?", T)
    lines = _fetch(con, "select * from shopify_order_lines where coalesce(added_at, '-infinity') <= ?", T)
    refunds = _fetch(con, "select * from shopify_refunds where created_at <= ?", T)
    refund_lines = _fetch(con, """select rl.* from shopify_refund_lines rl join shopify_refunds r using (refund_id)
                                  where r.created_at <= ?""", T)
    bts = _fetch(con, "select * from shopify_balance_transactions where processed_at <= ?", T)
    payouts = _fetch(con, "select * from shopify_payouts where visible_at <= ?", T)
    line_rates = {r["owner_id"]: r["rate"] for r in _fetch(
        con, "select owner_id, sum(rate) as rate from shopify_tax_lines where owner = 'line' group by owner_id")}
    # S13: orders whose tax Shopify rounded once per order: the line and shipping tax less the order's
    tax_rounding = {r["order_id"]: (r["d"], r["d_shop"]) for r in _fetch(con, """
        select order_id, sum(case when owner = 'order' then -amount else amount end) as d,
               sum(case when owner = 'order' then -amount_shop else amount_shop end) as d_shop
          from shopify_tax_lines
         where order_id in (select order_id from shopify_tax_lines where owner = 'order')
         group by order_id""")}
    order_by_id = {o["order_id"]: o for o in orders}
    line_by_id = {l["line_id"]: l for l in lines}
    rlines_by_refund: dict[int, list[dict]] = defaultdict(list)
    for rl in refund_lines:
        rlines_by_refund[rl["refund_id"]].append(rl)
    c = Canonical("shopify")
    # gift cards sold (S12) are not sales: their value goes on the order, not in the lines
    cards: dict[int, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for line in [l for l in lines if l["gift_card"]]:
        cards[line["order_id"]][0] += line["price"] * line["quantity"] - line["discount"]
        cards[line["order_id"]][1] += line["price_shop"] * line["quantity"] - line["discount_shop"]
    lines = [l for l in lines if not l["gift_card"]]
    for r in refunds:
        incl = order_by_id[r["order_id"]]["taxes_included"]
        goods = goods_tax = goods_h = goods_tax_h = cogs_rev = ZERO
        for rl in rlines_by_refund[r["refund_id"]]:
            goods += rl["subtotal"] - rl["total_tax"] if incl else rl["subtotal"]
            goods_tax += rl["total_tax"]
            goods_h += rl["subtotal_shop"] - rl["total_tax_shop"] if incl else rl["subtotal_shop"]
            goods_tax_h += rl["total_tax_shop"]
            if rl["restock_type"] == "return":
                cogs_rev += line_by_id[rl["line_id"]]["unit_cost_gbp"] * rl["quantity"]
        c.refunds.append({
            "refund_id": str(r["refund_id"]), "order_id": str(r["order_id"]), "refunded_at": r["created_at"],
            "goods_amount": goods, "shipping_amount": r["shipping_amount"], "tax_amount": goods_tax + r["shipping_tax"],
            "goods_amount_home": goods_h, "shipping_amount_home": r["shipping_amount_shop"],
            "tax_amount_home": goods_tax_h + r["shipping_tax_shop"], "cogs_reversal_home": _q(cogs_rev),
        })
    for line in lines:
        o = order_by_id.get(line["order_id"])
        if o is None:
            continue
        incl = o["taxes_included"]
        list_amt = line["price"] * line["quantity"]
        list_h = line["price_shop"] * line["quantity"]
        rate = line_rates.get(line["line_id"], ZERO)
        c.lines.append({
            "order_id": str(line["order_id"]), "line_id": str(line["line_id"]), "quantity": line["quantity"],
            "gross_amount": _money_div(list_amt, 1 + rate) if incl else list_amt,
            "net_amount": list_amt - line["discount"] - (line["tax"] if incl else ZERO),
            "tax_amount": line["tax"],
            "gross_amount_home": _money_div(list_h, 1 + rate) if incl else list_h,
            "net_amount_home": list_h - line["discount_shop"] - (line["tax_shop"] if incl else ZERO),
            "tax_amount_home": line["tax_shop"],
            "cogs_home": _q(line["unit_cost_gbp"] * line["quantity"]),
        })
    for o in orders:
        incl = o["taxes_included"]
        c.orders.append({
            "order_id": str(o["order_id"]), "customer_type": o["kind"], "currency": o["currency"],
            "ordered_at": o["created_at"],
            # a trade order cancelled before anything was paid is void (P11)
            "is_void": o["kind"] == "trade" and o["cancelled_at"] is not None and o["cancelled_at"] <= clock,
            "shipping_amount": o["shipping_price"] - o["shipping_tax"] if incl else o["shipping_price"],
            "shipping_amount_home": o["shipping_price_shop"] - o["shipping_tax_shop"] if incl else o["shipping_price_shop"],
            "shipping_tax": o["shipping_tax"], "shipping_tax_home": o["shipping_tax_shop"],
            "gift_card_amount": cards[o["order_id"]][0], "gift_card_amount_home": cards[o["order_id"]][1],
            "tax_rounding": tax_rounding.get(o["order_id"], (ZERO, ZERO))[0],
            "tax_rounding_home": tax_rounding.get(o["order_id"], (ZERO, ZERO))[1],
        })
    visible = {p["payout_id"] for p in payouts}
    for bt in bts:
        if bt["type"] == "charge":
            c.payments.append({"payment_id": str(bt["txn_id"]), "status": "succeeded", "amount": bt["amount"],
                               "amount_home": bt["amount"], "fee_home": bt["fee"], "currency": "GBP"})
        if bt["payout_id"] in visible:
            c.payout_transactions.append({"payout_id": str(bt["payout_id"]), "type": bt["type"],
                                          "amount": bt["amount"], "fee": bt["fee"], "net": bt["net"]})
        c.fees.append({"at": bt["processed_at"], "fee_home": bt["fee"]})
    for p in payouts:
        c.payouts.append({"payout_id": str(p["payout_id"]), "amount": p["amount"], "status": "paid",
                          "payout_date": p["payout_date"]})
    for t in gift_card_tenders(con, clock):  # paid out of a gift card the shop sold: no fee, no payout
        c.payments.append({"payment_id": str(t["txn_id"]), "status": "succeeded", "amount": t["amount"],
                           "amount_home": t["amount_shop"], "fee_home": ZERO, "currency": t["currency"]})
    return c, orders


def gift_card_tenders(con, clock: datetime) -> list[dict]:
    """Gift cards spent on Shopify orders by the clock (order transactions through the `gift_card`
    gateway, scenario S12)."""
    return _fetch(con, """select t.* from shopify_transactions t join shopify_orders o using (order_id)
                          where t.gateway = 'gift_card' and t.kind = 'sale' and t.created_at <= ?
                            and o.created_at <= ?""", [clock, clock])


def _stripe(con, clock: datetime) -> tuple[Canonical, list[dict], list[dict]]:
    """Stripe charges (trade invoice payments), their balance transactions and payouts."""
    T = [clock]
    charges = _fetch(con, "select * from stripe_charges where created <= ?", T)
    refunds = _fetch(con, "select * from stripe_refunds where created <= ?", T)
    bts = _fetch(con, "select * from stripe_balance_transactions where created <= ?", T)
    payouts = _fetch(con, "select * from stripe_payouts where created <= ?", T)
    c = Canonical("stripe")
    bt_by_id = {bt["bt_id"]: bt for bt in bts}
    for ch in charges:
        bt = bt_by_id.get(ch["balance_transaction"]) if ch["balance_transaction"] else None
        c.payments.append({
            "payment_id": ch["charge_id"], "status": ch["status"], "amount": _minor(ch["amount"]),
            "currency": ch["currency"].upper(),
            "amount_home": _minor(bt["amount"]) if bt else None, "fee_home": _minor(bt["fee"]) if bt else None,
        })
    visible = {p["payout_id"] for p in payouts}
    for bt in bts:
        if bt["payout_id"] in visible and bt["type"] != "payout":
            c.payout_transactions.append({"payout_id": bt["payout_id"], "type": bt["type"], "amount": _minor(bt["amount"]),
                                          "fee": _minor(bt["fee"]), "net": _minor(bt["net"])})
        c.fees.append({"at": bt["created"], "fee_home": _minor(bt["fee"])})
    for p in payouts:
        c.payouts.append({"payout_id": p["payout_id"], "amount": _minor(p["amount"]),
                          "status": "paid" if p["arrival_date"] <= clock else "in_transit",
                          "payout_date": p["arrival_date"].date()})
    return c, charges, refunds


def _compute(con, clock: datetime) -> dict[str, dict]:
    shopify, orders, = _shopify(con, clock)
    stripe, charges, s_refunds = _stripe(con, clock)
    channels = _channel_canonicals(con, clock)
    marts = assemble([shopify, stripe, *channels])
    fct_orders = marts["fct_orders"]
    customers = {c["customer_id"]: c for c in _fetch(con, "select * from customers")}
    as_of = _bdate(clock)

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
    for c in channels:  # ledger channels: payments recorded against their own invoices
        for pay in c.payments:
            number = pay.get("invoice_number")
            if number and pay["status"] == "succeeded":
                paid_by_invoice[number] += pay["amount"] - (pay.get("refunded_amount") or ZERO)
                at = pay.get("attempted_at")
                if at is not None:
                    last_paid[number] = max(last_paid.get(number, at), at)

    def invoice(f: dict, *, customer_id: str, customer_name: str, currency: str, issued_on: date, due_on: date,
                number: str) -> dict:
        void = f["is_void"]
        total, paid = f["total_amount"], paid_by_invoice[number]
        open_amt = ZERO if void else total - paid
        if void:
            status = "voided"
        elif open_amt < 0:
            status = "overpaid"
        elif open_amt == 0:
            status = "paid"
        elif due_on < as_of:
            status = "overdue"
        elif paid > 0:
            status = "partially_paid"
        else:
            status = "unpaid"
        # the home total less what the payments relieved at the invoice's rate: what the GL still holds
        open_home = ZERO if void or total == 0 else f["total_amount_home"] - _money_div(paid * f["total_amount_home"], total)
        return {
            "customer_id": customer_id, "currency": currency, "due_on": due_on,
            "issued_on": issued_on, "subtotal_amount": total - f["tax_amount"],
            "tax_amount": f["tax_amount"], "total_amount": total, "paid_amount": paid, "open_amount": open_amt,
            "status": status, "total_amount_home": f["total_amount_home"], "open_amount_home": open_home,
            "days_past_due": max(0, (as_of - due_on).days), "last_paid_at": last_paid.get(number),
            "customer_name": customer_name,
        }

    fct_invoices = {}
    for o in orders:
        if o["kind"] != "trade":
            continue
        number = invoice_number(o["name"])
        fct_invoices[number] = invoice(
            fct_orders[("shopify", str(o["order_id"]))], customer_id=str(o["shopify_customer_id"]),
            customer_name=customers[o["customer_id"]]["company"], currency=o["currency"],
            issued_on=_bdate(o["created_at"]), due_on=o["due_on"], number=number)
    for c in channels:
        for inv in c.invoices:
            f = fct_orders[(c.channel, str(inv["order_id"]))]
            fct_invoices[inv["invoice_number"]] = invoice(
                f, customer_id=str(inv["customer_id"]), customer_name=inv["customer_name"], currency=f["currency"],
                issued_on=inv["issued_on"], due_on=inv["due_on"], number=inv["invoice_number"])
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

    return {**marts, "fct_invoices": fct_invoices, "rpt_outstanding_balances": outstanding}
