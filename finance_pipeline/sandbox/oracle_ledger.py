"""The ledger half of the oracle: general ledger, tax obligations, payment status, sales trends and
the receivable detail, computed in plain Python `Decimal` from the sandbox world.

`oracle.compute` assembles the channel-shared marts (orders, lines, refunds, payments, payouts,
invoices); `extend` adds the marts of this module from those rows plus the few facts they do not
carry, read from each channel's world tables by a *ledger facts* function keyed by channel:

    order facts      tax treatment, country, region, order number, trade invoice number, and the
                     tax a marketplace collects and remits (`marketplace_tax_amount[_home]`, optional)
    line facts       order, product category, metres
    settlements      money a processor received for (or gave back on) an order or invoice, with
                     the document it belongs to and, when it is in the document's currency, its
                     amount in that currency; `held_in` says where it waits: 'clearing' (default,
                     the channel's processor balance), 'cash' (till), 'bank', 'undeposited',
                     'gift_card' (a gift card the business sold, spent: the liability is reduced)
    attempts         every payment attempt with its document, status and dispute state
    movements        other balance movements (dispute withdrawals and returns, adjustments)
    fees             every fee a processor or marketplace deducted
    lost disputes    disputes closed as lost by the clock

Shopify and Stripe are below (`_shopify_facts`, `_stripe_facts`).  A new channel provides
`facts(con, clock) -> LedgerFacts` in `finance_pipeline/platforms/<name>/oracle_ledger.py`; it is
found by name, so no shared file changes.  The accounting policy itself (how the facts become
entries and reports) is written once, in `extend`, without reading any dbt code: a difference
between this module and the marts is a bug in one of them.
"""
from __future__ import annotations

import importlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Callable, Iterable

from finance_pipeline.sandbox.world import LONDON, invoice_number
from finance_pipeline.sandbox.world import business_date as _bdate
from finance_pipeline.sandbox.world import q as _q

ZERO = Decimal("0.00")
HOME = "GBP"
WRITE_OFF_LIMIT = Decimal("1.00")  # dbt var settlement_write_off_limit

# Chart of accounts the marts use (dbt seeds gl_accounts, gl_channel_accounts, gl_tax_treatments).
AR, INVENTORY, DISPUTES, BANK = "1200", "1300", "1400", "1100"
TILL, UNDEPOSITED = "1050", "1060"
GIFT_CARDS = "2400"  # gift card liability (scenario S12)
DISCOUNTS, REFUNDS, SHIPPING, COGS = "4100", "4200", "4300", "5000"
CHARGEBACKS, ADJUSTMENTS, FX, ROUNDING = "6200", "6900", "7100", "7900"
CHANNEL_ACCOUNTS = {  # channel: (retail sales, trade sales, clearing, fees)
    "shopify": ("4000", "4010", "1310", "6100"), "stripe": ("4090", "4010", "1320", "6100"),
    "paypal": ("4090", "4010", "1330", "6100"), "square": ("4050", "4010", "1340", "6100"),
    "lightspeed": ("4060", "4010", "1350", "6100"), "amazon": ("4070", "4010", "1360", "6110"),
    "ebay": ("4080", "4010", "1370", "6110"), "woocommerce": ("4020", "4010", "1380", "6100"),
    "magento": ("4030", "4010", "1385", "6100"), "bigcommerce": ("4040", "4010", "1387", "6100"),
    "sap_business_one": ("4090", "4010", "1390", "6100"),
    "sage_intacct": ("4090", "4010", "1390", "6100"),
    "freshbooks": ("4090", "4010", "1390", "6100"),
    "dynamics365": ("4090", "4010", "1390", "6100"),
    "zoho_books": ("4090", "4010", "1390", "6100"),
    "quickbooks": ("4090", "4010", "1390", "6100"),
}
DEFAULT_ACCOUNTS = ("4090", "4010", "1390", "6100")
TAX_TREATMENTS = {  # treatment: (regime, jurisdiction rule, tax account, taxable)
    "uk_vat": ("UK VAT", "GB", "2200", True),
    "export_zero_rated": ("UK VAT", "GB", "2200", False),
    "eu_oss_vat": ("EU VAT (OSS)", "EU-{country}", "2210", True),
    "eu_reverse_charge": ("EU VAT (OSS)", "EU-{country}", "2210", False),
    "us_sales_tax": ("US sales tax", "US-{region}", "2220", True),
    "us_resale_exempt": ("US sales tax", "US-{region}", "2220", False),
    "au_gst": ("AU GST", "AU", "2230", True),
}
UNMAPPED_TAX = ("Unmapped", "XX-{country}", "2290", True)
PNL_LINES = {"7100": "fx_gain_loss", "7900": "rounding", "6200": "chargeback_losses", "6900": "other_adjustments"}


def _minor(amount: int) -> Decimal:
    return _q(Decimal(amount) / 100)


def _money_div(num: Decimal, den: Decimal) -> Decimal:
    return _q(num / den)


def _fetch(con, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    cur = con.execute(sql, list(params))
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


@dataclass
class LedgerFacts:
    """What one channel adds to the shared canonical rows for the ledger marts (module docstring)."""

    channel: str
    orders: dict[str, dict] = field(default_factory=dict)
    lines: dict[str, dict] = field(default_factory=dict)
    settlements: list[dict] = field(default_factory=list)
    attempts: list[dict] = field(default_factory=list)
    movements: list[dict] = field(default_factory=list)
    fees: list[dict] = field(default_factory=list)
    lost_disputes: set[str] = field(default_factory=set)
    # refund_id -> (marketplace tax given back, same in GBP), for marketplaces that remit tax themselves
    refund_marketplace_tax: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)


# ------------------------------------------------------------------------------ channel facts
def _shopify_facts(con, clock: datetime) -> LedgerFacts:
    T = [clock]
    f = LedgerFacts("shopify")
    for o in _fetch(con, """select order_id, name, kind, tax_treatment, country, region from shopify_orders
                            where created_at <= ?""", T):
        f.orders[str(o["order_id"])] = {
            "tax_treatment": o["tax_treatment"], "country": o["country"], "region": o["region"],
            "order_number": o["name"], "invoice_number": invoice_number(o["name"]) if o["kind"] == "trade" else None,
        }
    for line in _fetch(con, """select l.line_id, l.order_id, l.category, l.unit, l.quantity
                               from shopify_order_lines l join shopify_orders o using (order_id)
                               where o.created_at <= ? and coalesce(l.added_at, '-infinity') <= ?
                                 and not coalesce(l.gift_card, false)""", T * 2):
        f.lines[str(line["line_id"])] = {
            "order_id": str(line["order_id"]), "category": line["category"],
            "metres": Decimal(line["quantity"]) * Decimal("0.1") if line["unit"] == "10cm" else None,
        }
    for bt in _fetch(con, "select * from shopify_balance_transactions where processed_at <= ?", T):
        order_id = str(bt["order_id"])
        if bt["type"] == "charge":
            # Shopify Payments settles in shop money (GBP): in the document's currency only for GBP orders
            f.settlements.append({
                "source_type": "payment", "source_id": str(bt["txn_id"]), "bt_id": str(bt["bt_id"]),
                "at": bt["processed_at"], "doc": ("shopify", order_id), "currency": "GBP", "amount": bt["amount"],
                "amount_home": bt["amount"]})
            f.attempts.append({"payment_id": str(bt["txn_id"]), "status": "succeeded", "at": bt["processed_at"],
                               "doc": ("shopify", order_id), "amount_home": bt["amount"],
                               "dispute_open": False, "dispute_lost": False, "disputed": False})
        elif bt["type"] == "refund":
            f.settlements.append({
                "source_type": "payment_refund", "source_id": str(bt["bt_id"]), "bt_id": str(bt["bt_id"]),
                "at": bt["processed_at"], "doc": ("shopify", order_id), "currency": None, "amount": None,
                "amount_home": bt["amount"]})
        else:
            f.movements.append({"bt_id": str(bt["bt_id"]), "kind": "adjustment", "source_id": order_id,
                                "at": bt["processed_at"], "amount_home": bt["amount"]})
        if bt["fee"]:
            f.fees.append({"bt_id": str(bt["bt_id"]), "at": bt["processed_at"], "fee": bt["fee"]})
    from finance_pipeline.sandbox.oracle import gift_card_tenders

    for t in gift_card_tenders(con, clock):
        # a gift card the shop sold, spent on this order: the money came in when the card was sold,
        # so the order is settled out of the gift card liability (scenario S12)
        doc = ("shopify", str(t["order_id"]))
        f.settlements.append({
            "source_type": "payment", "source_id": str(t["txn_id"]), "bt_id": None, "at": t["created_at"],
            "doc": doc, "currency": t["currency"], "amount": t["amount"], "amount_home": t["amount_shop"],
            "held_in": "gift_card"})
        f.attempts.append({"payment_id": str(t["txn_id"]), "status": "succeeded", "at": t["created_at"],
                           "doc": doc, "amount_home": t["amount_shop"],
                           "dispute_open": False, "dispute_lost": False, "disputed": False})
    return f


def _stripe_facts(con, clock: datetime) -> LedgerFacts:
    T = [clock]
    f = LedgerFacts("stripe")
    trade_orders = {invoice_number(name): str(oid) for oid, name in con.execute(
        "select order_id, name from shopify_orders where kind = 'trade' and created_at <= ?", T).fetchall()}
    charges = {c["charge_id"]: c for c in _fetch(con, "select * from stripe_charges where created <= ?", T)}
    bts = {b["bt_id"]: b for b in _fetch(con, "select * from stripe_balance_transactions where created <= ?", T)}
    disputes = _fetch(con, "select * from stripe_disputes where created <= ?", T)
    by_charge: dict[str, list[dict]] = defaultdict(list)
    for d in disputes:
        by_charge[d["charge_id"]].append(d)
        if d["closed_at"] <= clock and d["outcome"] == "lost":
            f.lost_disputes.add(d["dispute_id"])

    def doc_of(charge: dict) -> tuple[str, str] | None:
        oid = trade_orders.get(charge["invoice_number"])
        return ("shopify", oid) if oid else None

    settled_bts = set()
    for c in charges.values():
        ds = by_charge.get(c["charge_id"], [])
        f.attempts.append({
            "payment_id": c["charge_id"], "status": c["status"], "at": c["created"], "doc": doc_of(c),
            "amount_home": _minor(bts[c["balance_transaction"]]["amount"]) if c["balance_transaction"] else None,
            "disputed": bool(ds), "dispute_open": any(d["closed_at"] > clock for d in ds),
            "dispute_lost": any(d["closed_at"] <= clock and d["outcome"] == "lost" for d in ds),
        })
        if c["status"] == "succeeded" and c["balance_transaction"] in bts:
            bt = bts[c["balance_transaction"]]
            settled_bts.add(bt["bt_id"])
            f.settlements.append({
                "source_type": "payment", "source_id": c["charge_id"], "bt_id": bt["bt_id"], "at": c["created"],
                "doc": doc_of(c), "currency": c["currency"].upper(), "amount": _minor(c["amount"]),
                "amount_home": _minor(bt["amount"])})
    for r in _fetch(con, "select * from stripe_refunds where created <= ?", T):
        bt = bts.get(r["balance_transaction"])
        if bt is None:
            continue
        settled_bts.add(bt["bt_id"])
        f.settlements.append({
            "source_type": "payment_refund", "source_id": bt["bt_id"], "bt_id": bt["bt_id"], "at": bt["created"],
            "doc": doc_of(charges[r["charge_id"]]), "currency": r["currency"].upper(), "amount": -_minor(r["amount"]),
            "amount_home": _minor(bt["amount"])})
    for bt in bts.values():
        if bt["fee"]:
            f.fees.append({"bt_id": bt["bt_id"], "at": bt["created"], "fee": _minor(bt["fee"])})
        if bt["type"] == "payout" or bt["bt_id"] in settled_bts:
            continue
        kind = bt["reporting_category"] if bt["reporting_category"] in ("dispute", "dispute_reversal") else "adjustment"
        f.movements.append({"bt_id": bt["bt_id"], "kind": kind, "source_id": bt["source"], "at": bt["created"],
                            "amount_home": _minor(bt["amount"])})
    return f


LEDGER_FACTS: dict[str, Callable[[Any, datetime], LedgerFacts]] = {
    "shopify": _shopify_facts,
    "stripe": _stripe_facts,
}


def _channel_facts(con, clock: datetime) -> list[LedgerFacts]:
    """Shopify and Stripe from here; any other registered platform from its own oracle_ledger module."""
    out = [fn(con, clock) for fn in LEDGER_FACTS.values()]
    try:
        from finance_pipeline.platforms import registry
    except ImportError:  # pragma: no cover
        return out
    for p in registry.PLATFORMS:
        if p.name in LEDGER_FACTS:
            continue
        try:
            module = importlib.import_module(f"finance_pipeline.platforms.{p.name}.oracle_ledger")
        except ModuleNotFoundError:
            continue
        out.append(module.facts(con, clock))
    return out


# ------------------------------------------------------------------------------ the ledger
def _accounts(channel: str) -> tuple[str, str, str, str]:
    return CHANNEL_ACCOUNTS.get(channel, DEFAULT_ACCOUNTS)


def _held_in_account(channel: str, held_in: str) -> str:
    """Where settled money waits: the channel's clearing account (a processor balance, the default),
    the showroom till, the bank itself (a bank transfer a ledger channel recorded), undeposited funds,
    or the gift card liability (a gift card the business sold, spent on the order)."""
    return {"clearing": _accounts(channel)[2], "cash": TILL, "bank": BANK, "undeposited": UNDEPOSITED,
            "gift_card": GIFT_CARDS}[held_in]


def _tax(order: dict) -> tuple[str, str, str, bool]:
    regime, rule, account, taxable = TAX_TREATMENTS.get(order.get("tax_treatment") or "", UNMAPPED_TAX)
    jurisdiction = rule.format(country=(order.get("country") or "??").upper(), region=(order.get("region") or "??").upper())
    return regime, jurisdiction, account, taxable


def _bt_date(at: datetime) -> date:
    return _bdate(at)


class _Journal:
    def __init__(self) -> None:
        self.lines: dict[tuple[str, str], dict] = {}
        self.ar: list[tuple[tuple[str, str], datetime, Decimal]] = []  # (document, at, amount)
        # (document, at, amount in the entry's own currency or None, amount in GBP): oracle_fx's revaluation
        self.ar_moves: list[tuple[tuple[str, str], datetime, Decimal | None, Decimal]] = []

    def post(self, entry_id: str, source_type: str, channel: str, at: datetime, account: str, amount: Decimal,
             jurisdiction: str | None = None, document: tuple[str, str] | None = None,
             posted_on: date | None = None, foreign: Decimal | None = None) -> None:
        if amount == 0:
            return
        key = (entry_id, account)
        assert key not in self.lines, key
        self.lines[key] = {
            "posted_on": posted_on or _bdate(at), "account_code": account, "amount_home": amount,
            "debit_home": amount if amount > 0 else ZERO, "credit_home": -amount if amount < 0 else ZERO,
            "source_type": source_type, "channel": channel, "jurisdiction": jurisdiction,
            "document_channel": document[0] if document and account == AR else None,
            "document_id": document[1] if document and account == AR else None,
        }
        if account == AR and document:
            self.ar.append((document, at, amount))
            self.ar_moves.append((document, at, foreign, amount))


SCOPE_KEY = "_ledger_scope"  # {mart: channels the expected rows cover}; not a mart (tests/pipeline_helpers.py)
AR_DOCS_KEY = "_ar_documents"  # receivable movements per document and invoice documents (oracle_fx); not a mart
BY_CHANNEL = ("fct_gl_entries", "rpt_payment_status", "rpt_sales_trends", "rpt_ar_invoice_detail")


def extend(con, clock: datetime, marts: dict[str, dict]) -> dict[str, dict]:
    """The base marts plus fct_gl_entries, rpt_tax_obligations, rpt_payment_status,
    rpt_sales_trends, rpt_ar_invoice_detail, and the ledger columns of the P&L and outstanding balances.

    Only channels with ledger facts are covered: the rows of the per-channel marts are expected for
    them alone (`SCOPE_KEY` says which, so a comparison leaves other channels' rows out), and the
    cross-channel tax mart is expected only when every channel that sold something is covered."""
    facts = {f.channel: f for f in _channel_facts(con, clock)}
    covered = set(facts)
    selling = {ch for ch, _ in marts["fct_orders"]} | {ch for ch, _ in marts["fct_payouts"]}
    scoped = {m: {k: v for k, v in rows.items() if k[0] in covered}
              for m, rows in marts.items() if m in ("fct_orders", "fct_refunds", "fct_payouts", "fct_order_lines")}
    ledger = _ledger_marts(facts, {**marts, **scoped}, clock)
    if not selling <= covered:
        ledger.pop("rpt_tax_obligations")
    return {**marts, **ledger, SCOPE_KEY: {m: covered for m in BY_CHANNEL}}


def _ledger_marts(facts: dict[str, LedgerFacts], marts: dict[str, dict], clock: datetime) -> dict[str, dict]:
    as_of = _bdate(clock)
    orders = marts["fct_orders"]
    refunds = marts["fct_refunds"]
    invoices = marts["fct_invoices"]
    order_facts = {(ch, oid): o for ch, f in facts.items() for oid, o in f.orders.items()}
    invoice_docs = {o["invoice_number"]: key for key, o in order_facts.items() if o.get("invoice_number")}
    invoice_doc_set = {invoice_docs[n] for n in invoices if n in invoice_docs}
    j = _Journal()

    # ---- orders and refunds ------------------------------------------------------------------
    live_orders = {k: o for k, o in orders.items() if not o["is_void"]}
    mp_tax = {k: (f.get("marketplace_tax_amount") or ZERO, f.get("marketplace_tax_amount_home") or ZERO)
              for k, f in order_facts.items()}
    refund_mp_tax = {(ch, rid): v for ch, f in facts.items() for rid, v in f.refund_marketplace_tax.items()}
    receivable = {k: (o["total_amount"] - mp_tax.get(k, (ZERO, ZERO))[0], o["total_amount_home"] - mp_tax.get(k, (ZERO, ZERO))[1])
                  for k, o in orders.items()}
    for (ch, oid), o in live_orders.items():
        retail, trade, _, _ = _accounts(ch)
        _, jurisdiction, tax_account, _ = _tax(order_facts[(ch, oid)])
        e, at = f"order:{ch}:{oid}", o["ordered_at"]
        j.post(e, "order", ch, at, AR, receivable[(ch, oid)][1], document=(ch, oid), foreign=receivable[(ch, oid)][0])
        j.post(e, "order", ch, at, trade if o["customer_type"] == "trade" else retail, -o["gross_amount_home"])
        j.post(e, "order", ch, at, DISCOUNTS, o["discount_amount_home"])
        j.post(e, "order", ch, at, SHIPPING, -o["shipping_amount_home"])
        j.post(e, "order", ch, at, tax_account, -(o["tax_amount_home"] - mp_tax[(ch, oid)][1]), jurisdiction=jurisdiction)
        j.post(e, "order", ch, at, COGS, o["cogs_home"])
        j.post(e, "order", ch, at, INVENTORY, -o["cogs_home"])
        j.post(e, "order", ch, at, GIFT_CARDS, -o.get("gift_card_amount_home", ZERO))
        j.post(e, "order", ch, at, ROUNDING, -o.get("tax_rounding_amount_home", ZERO))  # S13
    for (ch, rid), r in refunds.items():
        if (ch, r["order_id"]) not in live_orders:
            continue
        _, jurisdiction, tax_account, _ = _tax(order_facts[(ch, r["order_id"])])
        e, at = f"refund:{ch}:{rid}", r["refunded_at"]
        j.post(e, "refund", ch, at, REFUNDS, r["goods_amount_home"])
        j.post(e, "refund", ch, at, SHIPPING, r["shipping_amount_home"])
        rmp_foreign, rmp = refund_mp_tax.get((ch, rid), (ZERO, ZERO))
        j.post(e, "refund", ch, at, tax_account, r["tax_amount_home"] - rmp, jurisdiction=jurisdiction)
        j.post(e, "refund", ch, at, AR, -(r["total_amount_home"] - rmp), document=(ch, r["order_id"]),
               foreign=-(r["total_amount"] - rmp_foreign))
        j.post(e, "refund", ch, at, INVENTORY, r["cogs_reversal_home"])
        j.post(e, "refund", ch, at, COGS, -r["cogs_reversal_home"])

    # ---- settlements: AR relieved at the document's rate, cumulatively ----------------------------
    settlements = [dict(s, channel=ch) for ch, f in facts.items() for s in f.settlements]
    cum: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for s in sorted(settlements, key=lambda s: (s["at"], s["source_id"])):
        doc = s["doc"] if s["doc"] in orders else None
        d = orders.get(doc) if doc else None
        total, total_home = receivable[doc] if doc else (ZERO, ZERO)
        at_rate = d is not None and s["amount"] is not None and s["currency"] == d["currency"] and total != 0
        if at_rate:
            before = cum[doc]
            cum[doc] += s["amount"]
            relief = _money_div(cum[doc] * total_home, total) - _money_div(before * total_home, total)
        else:
            relief = s["amount_home"]
        ch = s["channel"]
        e = f"{s['source_type']}:{ch}:{s['source_id']}"
        j.post(e, s["source_type"], ch, s["at"], _held_in_account(ch, s.get("held_in", "clearing")), s["amount_home"])
        j.post(e, s["source_type"], ch, s["at"], AR, -relief, document=doc, foreign=-s["amount"] if at_rate else None)
        fx_account = ROUNDING if (d is None or d["currency"] == HOME) else FX
        j.post(e, s["source_type"], ch, s["at"], fx_account, relief - s["amount_home"])

    # ---- settlement differences of paid-at-checkout orders -------------------------------------
    by_doc_day: dict[tuple[str, str], dict[date, list]] = defaultdict(lambda: defaultdict(lambda: [ZERO, None]))
    for doc, at, amount in j.ar:
        if doc in invoice_doc_set:
            continue
        cell = by_doc_day[doc][_bdate(at)]
        cell[0] += amount
        cell[1] = at if cell[1] is None or at > cell[1] else cell[1]
    for doc, days in by_doc_day.items():
        balance = ZERO
        swept = ZERO
        for day in sorted(days):
            amount, last_at = days[day]
            balance += amount
            if abs(balance) < WRITE_OFF_LIMIT:
                sweep = balance - swept
                swept = balance
                if sweep:
                    e = f"settlement_difference:{doc[0]}:{doc[1]}:{day.isoformat()}"
                    fx_account = ROUNDING if orders[doc]["currency"] == HOME else FX
                    j.post(e, "settlement_difference", doc[0], last_at, AR, -sweep, document=doc)
                    j.post(e, "settlement_difference", doc[0], last_at, fx_account, sweep)

    # ---- fees, disputes, adjustments, payouts ----------------------------------------------------
    for ch, f in facts.items():
        _, _, clearing, fees_account = _accounts(ch)
        for fee in f.fees:
            e = f"fee:{ch}:{fee['bt_id']}"
            j.post(e, "fee", ch, fee["at"], fees_account, fee["fee"])
            j.post(e, "fee", ch, fee["at"], clearing, -fee["fee"])
        withdrawn: dict[str, Decimal] = defaultdict(lambda: ZERO)
        withdrawn_at: dict[str, datetime] = {}
        for m in f.movements:
            if m["kind"] == "dispute":
                withdrawn[m["source_id"]] += m["amount_home"]
                withdrawn_at[m["source_id"]] = min(withdrawn_at.get(m["source_id"], m["at"]), m["at"])
        for m in f.movements:
            e, kind, amount = f"{m['kind']}:{ch}:{m['bt_id']}", m["kind"], m["amount_home"]
            j.post(e, kind, ch, m["at"], clearing, amount)
            if kind == "dispute_reversal":
                w = withdrawn.get(m["source_id"], -amount)
                j.post(e, kind, ch, m["at"], DISPUTES, w)
                j.post(e, kind, ch, m["at"], FX, -(amount + w))
            else:
                j.post(e, kind, ch, m["at"], ADJUSTMENTS if kind == "adjustment" else DISPUTES, -amount)
        for dispute_id in f.lost_disputes:
            if dispute_id in withdrawn:
                e, at = f"dispute_lost:{ch}:{dispute_id}", withdrawn_at[dispute_id]
                j.post(e, "dispute_lost", ch, at, CHARGEBACKS, -withdrawn[dispute_id])
                j.post(e, "dispute_lost", ch, at, DISPUTES, withdrawn[dispute_id])
    for (ch, pid), p in marts["fct_payouts"].items():
        if p["status"] != "paid":
            continue
        at = datetime.combine(p["payout_date"], time(0), tzinfo=LONDON)
        e = f"payout:{ch}:{pid}"
        home = p.get("amount_home", p["amount"])  # what reached the (GBP) bank account
        j.post(e, "payout", ch, at, BANK, home, posted_on=p["payout_date"])
        j.post(e, "payout", ch, at, _accounts(ch)[2], -home, posted_on=p["payout_date"])

    out: dict[str, Any] = {"fct_gl_entries": j.lines, AR_DOCS_KEY: {"moves": j.ar_moves, "invoice_docs": invoice_docs}}
    out["rpt_tax_obligations"] = _tax_obligations(live_orders, refunds, order_facts, refund_mp_tax)
    out["rpt_payment_status"] = _payment_status(facts, orders, refunds, invoices, invoice_docs, order_facts)
    out["rpt_sales_trends"] = _sales_trends(facts, marts["fct_order_lines"], orders, as_of)
    ar_by_doc: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for doc, _, amount in j.ar:
        ar_by_doc[doc] += amount
    out["rpt_ar_invoice_detail"] = _ar_detail(invoices, invoice_docs, refunds, ar_by_doc)
    out["rpt_outstanding_balances"] = _outstanding_extra(marts["rpt_outstanding_balances"], out["rpt_ar_invoice_detail"],
                                                         invoices, as_of)
    out["rpt_profit_and_loss"] = _pnl_extra(marts["rpt_profit_and_loss"], j.lines, set(facts))
    return out


# ------------------------------------------------------------------------------ reports
def _quarter(d: date) -> str:
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


def _tax_obligations(live_orders: dict, refunds: dict, order_facts: dict, refund_mp_tax: dict) -> dict:
    rows: dict[tuple[str, str], dict] = {}

    def row(jurisdiction: str, period: str) -> dict:
        return rows.setdefault((jurisdiction, period), {
            "orders": 0, "refunds": 0, "taxable_sales_home": ZERO, "zero_rated_sales_home": ZERO,
            "tax_collected_home": ZERO, "tax_refunded_home": ZERO, "marketplace_collected_tax_home": ZERO})

    for key, o in live_orders.items():
        _, jurisdiction, _, taxable = _tax(order_facts[key])
        r = row(jurisdiction, _quarter(_bdate(o["ordered_at"])))
        r["orders"] += 1
        sales = o["gross_amount_home"] - o["discount_amount_home"] + o["shipping_amount_home"]
        r["taxable_sales_home" if taxable else "zero_rated_sales_home"] += sales
        mp = order_facts[key].get("marketplace_tax_amount_home") or ZERO
        r["tax_collected_home"] += o["tax_amount_home"] - mp
        r["marketplace_collected_tax_home"] += mp
    for (ch, rid), rf in refunds.items():
        if (ch, rf["order_id"]) not in live_orders:
            continue
        _, jurisdiction, _, taxable = _tax(order_facts[(ch, rf["order_id"])])
        r = row(jurisdiction, _quarter(_bdate(rf["refunded_at"])))
        r["refunds"] += 1
        r["taxable_sales_home" if taxable else "zero_rated_sales_home"] -= rf["goods_amount_home"] + rf["shipping_amount_home"]
        mp = refund_mp_tax.get((ch, rid), (ZERO, ZERO))[1]
        r["tax_refunded_home"] += rf["tax_amount_home"] - mp
        r["marketplace_collected_tax_home"] -= mp
    for r in rows.values():
        r["net_owed_home"] = r["tax_collected_home"] - r["tax_refunded_home"]
    return rows


def _payment_status(facts, orders, refunds, invoices, invoice_docs, order_facts) -> dict:
    attempts: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for f in facts.values():
        for a in f.attempts:
            if a["doc"] is not None:
                attempts[a["doc"]].append(a)
    refunded: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    for (ch, _), r in refunds.items():
        refunded[(ch, r["order_id"])] += r["total_amount"]
    doc_invoice = {doc: number for number, doc in invoice_docs.items() if number in invoices}
    out = {}
    for key, o in orders.items():
        ats = attempts.get(key, [])
        ok = [a for a in ats if a["status"] == "succeeded"]
        failed = [a for a in ats if a["status"] == "failed"]
        number = doc_invoice.get(key)
        inv = invoices.get(number) if number else None
        if o["is_void"]:
            status = "cancelled"
        elif any(a["disputed"] and a["dispute_open"] for a in ats):
            status = "disputed"
        elif any(a["dispute_lost"] for a in ats):
            status = "refunded"
        elif refunded[key] > 0 and refunded[key] >= o["total_amount"]:
            status = "refunded"
        elif refunded[key] > 0:
            status = "partially_refunded"
        elif inv is not None:
            status = {"paid": "paid", "overpaid": "paid", "overdue": "overdue", "partially_paid": "partially_paid"}.get(
                inv["status"], "failed" if failed else "unpaid")
        elif ok:
            status = "paid"
        elif failed:
            status = "failed"
        else:
            status = "unpaid"
        out[key] = {
            "payment_status": status, "document_type": "invoice" if inv is not None else "order",
            "invoice_number": number if inv is not None else None,
            "payment_count": len(ok), "failed_attempt_count": len(failed),
            "paid_amount_home": sum((a["amount_home"] for a in ok), ZERO),
            "refunded_amount": refunded[key],
            "payment_ids": ", ".join(a["payment_id"] for a in sorted(ok, key=lambda a: (a["at"], a["payment_id"]))) or None,
            "failed_payment_ids": ", ".join(a["payment_id"] for a in sorted(failed, key=lambda a: (a["at"], a["payment_id"]))) or None,
        }
    return out


def _sales_trends(facts, order_lines, orders, as_of: date) -> dict:
    daily: dict[tuple[str, str, date], dict] = defaultdict(lambda: {"orders": set(), "units": 0, "metres": ZERO,
                                                                    "gross": ZERO, "disc": ZERO, "net": ZERO})
    combos = set()
    days = []
    for ch, f in facts.items():
        for line_id, lf in f.lines.items():
            line = order_lines.get((ch, line_id))
            o = orders.get((ch, lf["order_id"]))
            if line is None or o is None or o["is_void"]:
                continue
            day = _bdate(o["ordered_at"])
            cell = daily[(ch, lf["category"], day)]
            cell["orders"].add(lf["order_id"])
            cell["units"] += line["quantity"]
            cell["metres"] += lf["metres"] or ZERO
            cell["gross"] += line["gross_amount_home"]
            cell["disc"] += line["discount_amount_home"]
            cell["net"] += line["net_amount_home"]
            combos.add((ch, lf["category"]))
            days.append(day)
    if not days:
        return {}
    first, last = min(days), max(max(days), as_of)

    def starts(grain: str) -> list[date]:
        def trunc(d: date) -> date:
            return d if grain == "day" else d - timedelta(days=d.weekday()) if grain == "week" else d.replace(day=1)
        out, d = [], trunc(first)
        end = trunc(last)
        while d <= end:
            out.append(d)
            if grain == "day":
                d += timedelta(days=1)
            elif grain == "week":
                d += timedelta(days=7)
            else:
                d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        return out

    def trunc_to(grain: str, d: date) -> date:
        return d if grain == "day" else d - timedelta(days=d.weekday()) if grain == "week" else d.replace(day=1)

    out = {}
    for grain in ("day", "week", "month"):
        agg: dict[tuple[str, str, date], dict] = defaultdict(lambda: {"orders": set(), "units": 0, "metres": ZERO,
                                                                      "gross": ZERO, "disc": ZERO, "net": ZERO})
        for (ch, cat, day), cell in daily.items():
            a = agg[(ch, cat, trunc_to(grain, day))]
            a["orders"] |= cell["orders"]
            for k in ("units", "metres", "gross", "disc", "net"):
                a[k] += cell[k]
        periods = starts(grain)
        for ch, cat in combos:
            series = [(p, agg.get((ch, cat, p))) for p in periods]
            nets = {p: (a["net"] if a else ZERO) for p, a in series}
            prev = None
            for i, (p, a) in enumerate(series):
                net = a["net"] if a else ZERO
                n_orders = len(a["orders"]) if a else 0
                if grain == "month":
                    ly_key = date(p.year - 1, p.month, 1)
                else:
                    ly_key = p - timedelta(days=364)
                ly = nets.get(ly_key)
                row = {
                    "orders": n_orders, "units": a["units"] if a else 0,
                    "metres": a["metres"] if a else ZERO, "gross_sales_home": a["gross"] if a else ZERO,
                    "discounts_home": a["disc"] if a else ZERO, "net_sales_home": net,
                    "average_order_value_home": _money_div(net, Decimal(n_orders)) if n_orders else None,
                    "previous_net_sales_home": prev,
                    "change_vs_previous_home": net - prev if prev is not None else None,
                    "change_vs_previous_pct": _money_div((net - prev) * 100, prev) if prev else None,
                    "last_year_net_sales_home": ly,
                    "change_vs_last_year_home": net - ly if ly is not None else None,
                    "change_vs_last_year_pct": _money_div((net - ly) * 100, ly) if ly else None,
                    "moving_avg_7d_home": None, "moving_avg_28d_home": None,
                }
                if grain == "day":
                    if i >= 6:
                        row["moving_avg_7d_home"] = _money_div(sum((nets[q] for q, _ in series[i - 6:i + 1]), ZERO), Decimal(7))
                    if i >= 27:
                        row["moving_avg_28d_home"] = _money_div(sum((nets[q] for q, _ in series[i - 27:i + 1]), ZERO), Decimal(28))
                out[(grain, p.isoformat(), ch, cat)] = row
                prev = net
    return out


def _ar_detail(invoices, invoice_docs, refunds, ar_by_doc) -> dict:
    credits: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for (ch, _), r in refunds.items():
        c = credits[(ch, r["order_id"])]
        c[0] += r["total_amount"]
        c[1] += r["total_amount_home"]
    out = {}
    for number, inv in invoices.items():
        doc = invoice_docs[number]
        credit, credit_h = credits.get(doc, [ZERO, ZERO])
        void = inv["status"] == "voided"
        open_amt = inv["open_amount"] - (ZERO if void else credit)
        open_h = inv["open_amount_home"] - (ZERO if void else credit_h)
        dpd = inv["days_past_due"]
        if void:
            bucket = "voided"
        elif open_h <= 0:
            bucket = "credit"
        elif dpd <= 0:
            bucket = "current"
        elif dpd <= 30:
            bucket = "1-30"
        elif dpd <= 60:
            bucket = "31-60"
        elif dpd <= 90:
            bucket = "61-90"
        else:
            bucket = "90+"
        out[number] = {
            "invoiced_amount": inv["total_amount"], "credit_note_amount": credit, "paid_amount": inv["paid_amount"],
            "open_amount": open_amt, "open_amount_home": open_h, "credit_note_amount_home": credit_h,
            "gl_ar_balance_home": ar_by_doc.get(doc, ZERO), "aging_bucket": bucket, "days_past_due": dpd,
            "customer_id": inv["customer_id"], "issued_on": inv["issued_on"], "status": inv["status"],
            "invoiced_amount_home": inv["total_amount_home"], "last_paid_at": inv["last_paid_at"],
        }
    return out


def _outstanding_extra(base: dict, detail: dict, invoices: dict, as_of: date) -> dict:
    out = {k: dict(v) for k, v in base.items()}
    per: dict[str, dict] = defaultdict(lambda: {"credit": ZERO, "overdue": ZERO, "open_h": ZERO, "sales90": ZERO,
                                                "last": None})
    for number, d in detail.items():
        if d["status"] == "voided":
            continue
        p = per[d["customer_id"]]
        p["credit"] += d["credit_note_amount"]
        p["open_h"] += d["open_amount_home"]
        if d["aging_bucket"] not in ("current", "credit"):
            p["overdue"] += d["open_amount_home"]
        if d["issued_on"] > as_of - timedelta(days=90):
            p["sales90"] += d["invoiced_amount_home"]
        if d["last_paid_at"] is not None and (p["last"] is None or d["last_paid_at"] > p["last"]):
            p["last"] = d["last_paid_at"]
    for customer, p in per.items():
        row = out.setdefault(customer, {})
        row["credit_note_amount"] = p["credit"]
        row["overdue_amount_home"] = p["overdue"]
        row["dso_days"] = _money_div(p["open_h"] * 90, p["sales90"]) if p["sales90"] > 0 else None
        row["last_payment_date"] = _bdate(p["last"]) if p["last"] is not None else None
    return out


def _pnl_extra(base: dict, gl_lines: dict, covered: set[str]) -> dict:
    """The ledger columns of the P&L, for the channels the ledger facts cover."""
    out = {k: dict(v) for k, v in base.items()}
    extra: dict[tuple[str, date], dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for line in gl_lines.values():
        col = PNL_LINES.get(line["account_code"])
        if col is None:
            continue
        month = line["posted_on"].replace(day=1)
        sign = -1 if col in ("fx_gain_loss", "rounding") else 1
        extra[(line["channel"], month)][col] += sign * line["amount_home"]
    for key in set(out) | set(extra):
        if key[0] not in covered:
            continue
        row = out.setdefault(key, {})
        e = extra.get(key, {})
        for col in PNL_LINES.values():
            row[col] = e.get(col, ZERO)
        if "contribution" in row:
            row["net_contribution"] = (row["contribution"] + row["fx_gain_loss"] + row["rounding"]
                                       - row["chargeback_losses"] - row["other_adjustments"])
    return out
