"""One summary invoice per processor or marketplace payout, so the payout matches the bank deposit.

Accountant practice (A2X-style) for money that arrives in batches: each payout becomes one ACCREC
invoice to the processor's contact ("Shopify Payments", "Stripe" …), InvoiceNumber `PO-<channel>-<payout id>`,
dated on the payout's arrival date, whose lines are the payout's balance transactions grouped by
kind — every line `NoTax`-style (TaxType NONE), because the tax is a line of its own:

    Sales, <channel> (ex tax)            200  sales through the channel that no invoice carries
    Tax collected on those sales         825  liability to the tax authority (VAT, OSS, US, AU)
    Gift cards sold                      845  the value of gift cards sold (S12): a liability until
                                              spent, no VAT (XERO_GIFT_CARD_ACCOUNT names the account)
    Refunds, <channel> (ex tax)          200  negative
    Tax refunded                         825  negative
    Card payments of trade invoices      835  charges that paid trade invoices (already posted as
                                              payments into clearing: this line empties clearing)
    Refunds of trade-invoice payments    835  negative
    Dispute withdrawals and reversals    835  signed
    Processing and dispute fees          404  negative

Then a payment of the invoice's total from the bank account (090) on the arrival date: Xero's bank
feed line for the deposit matches that payment exactly.  Tax on a charge or a refund is its order's
tax share, applied to the settlement amount, to the cent (`OrderMoney`): a refund's is
tax / (total − gift cards sold); a charge covers the order's total less what gift card tenders paid,
so it carries the gift cards sold on the order (× cards sold / (total − tenders)) and the tax the
tenders do not (× (tax − tenders' tax) / (total − tenders)) — a single charge exactly the rest of the
order's VAT.  The tenders themselves reach no payout: `gift_cards.py` books them in a manual
journal a day (Dr gift card liability, Cr sales, Cr tax).  A charge or
refund with no order (trade-invoice payments, refunds of duplicate payments) goes to clearing;
where the processor itemises tax as rows of its own (a category containing "tax", as Amazon's
settlements do) those rows are the tax line instead.

A negative payout (more refunds than sales, scenario P5: a debit from the bank) cannot be an
invoice (Xero refuses a negative total): it becomes an ACCRECCREDIT credit note with the same lines,
signs turned, and a refund payment of it from the bank — the debit the bank feed shows.  A payout
that does not reconcile (`rpt_payout_reconciliation`), or of exactly zero, is recorded failed with
the reason (and quarantined) for the bookkeeper.  Payouts not yet paid wait.

Channel-agnostic: it reads `marts.fct_payouts`, `intermediate.int_balance_transactions`,
`marts.fct_orders` (with `gift_card_amount` when the marts have it) and `marts.fct_payments`
(trade payments; `processor = 'gift_card'` tenders), whatever channels they hold.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import duckdb

from finance_pipeline.platforms.xero.wire import money
from finance_pipeline.publish.ledger import content_hash
from finance_pipeline.publish.marts import _has_table, to_decimal
from finance_pipeline.publish.mechanics import Desired, ItemError, Write, resolve_unknown

log = logging.getLogger("finance_pipeline.xero.payouts")

PAYOUT_MAPPING = "xero-payout-summary/1"
BANK_ACCOUNT = "090"
CONTACT_NAMES = {"shopify": "Shopify Payments", "stripe": "Stripe"}
GIFT_CARD_ACCOUNT = "845"  # Gift Card Liability (CURRLIAB); XERO_GIFT_CARD_ACCOUNT names another
LINES = (  # (line kind, description, account code) in the order they appear; None: the gift card account
    ("sales", "Sales, {title} (ex tax)", "200"),
    ("sales_tax", "Tax collected on {title} sales", "825"),
    ("gift_cards", "Gift cards sold", None),
    ("refunds", "Refunds, {title} (ex tax)", "200"),
    ("refunds_tax", "Tax refunded on {title} refunds", "825"),
    ("trade_payments", "Card payments of trade invoices (from clearing)", "835"),
    ("trade_refunds", "Refunds of trade-invoice payments (from clearing)", "835"),
    ("adjustments", "Disputes, reversals and other adjustments", "835"),
    ("fees", "Processing and dispute fees", "404"),
)
CENT = Decimal("0.01")


@dataclass
class MartPayout:
    channel: str
    payout_id: str
    payout_date: date
    currency: str
    amount: Decimal
    status: str
    reconciled: bool
    break_reason: str | None
    parts: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    @property
    def number(self) -> str:
        return f"PO-{self.channel}-{self.payout_id}"


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def gift_card_account() -> str:
    """The Xero account holding gift cards sold and not yet spent (`XERO_GIFT_CARD_ACCOUNT`)."""
    from finance_pipeline.settings import env

    return (env("XERO_GIFT_CARD_ACCOUNT") or "").strip() or GIFT_CARD_ACCOUNT


@dataclass
class OrderMoney:
    """What an order's money splits into (order currency): `total` paid by the buyer, of which
    `gift_cards` sold (a liability, no tax) and the rest revenue (goods and shipping with `tax`);
    `card_paid` of it tendered with gift cards the shop sold earlier, whose tax share is `card_tax`
    (`tender_tax` per payment id)."""
    tax: Decimal
    total: Decimal
    gift_cards: Decimal = Decimal(0)
    card_paid: Decimal = Decimal(0)
    card_tax: Decimal = Decimal(0)
    tender_tax: dict[str, Decimal] = field(default_factory=dict)

    @property
    def revenue(self) -> Decimal:
        return self.total - self.gift_cards

    def add_tender(self, payment_id: str, amount: Decimal) -> None:
        """A gift card tender's tax: its share of the revenue's tax, rounded cumulatively so the
        tenders of an order paid wholly by cards carry exactly the order's tax."""
        before = _cents(self.card_paid * self.tax / self.revenue) if self.revenue else Decimal(0)
        self.card_paid += amount
        after = _cents(self.card_paid * self.tax / self.revenue) if self.revenue else Decimal(0)
        self.tender_tax[payment_id] = after - before
        self.card_tax += after - before

    def split_charge(self, amount: Decimal) -> tuple[Decimal, Decimal]:
        """(gift cards sold, tax) inside a processor charge: the charges cover the total less the
        gift card tenders, i.e. the cards sold and the revenue's tax less the tenders' share, so a
        single charge carries exactly what the card tenders do not."""
        rest = self.total - self.card_paid
        if not rest:
            return Decimal(0), Decimal(0)
        return _cents(amount * self.gift_cards / rest), _cents(amount * (self.tax - self.card_tax) / rest)

    def tax_of_refund(self, amount: Decimal) -> Decimal:
        return _cents(amount * self.tax / self.revenue) if self.revenue else Decimal(0)


def _columns(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> set[str]:
    return {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_schema = ? AND table_name = ?", [schema, table]).fetchall()}


def load_order_money(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], OrderMoney]:
    """Every order's tax, total, gift cards sold and gift card tenders (`marts.fct_orders`,
    `marts.fct_payments` with processor `gift_card`)."""
    if not _has_table(con, "marts", "fct_orders"):
        return {}
    gift = "gift_card_amount" if "gift_card_amount" in _columns(con, "marts", "fct_orders") else "0"
    orders = {(r[0], str(r[1])): OrderMoney(to_decimal(r[2]), to_decimal(r[3]), to_decimal(r[4])) for r in con.execute(
        f"SELECT channel, order_id, tax_amount, total_amount, {gift} FROM marts.fct_orders").fetchall()}
    if _has_table(con, "marts", "fct_payments"):
        for channel, order_id, payment_id, amount in con.execute(
                "SELECT channel, order_id, payment_id, amount FROM marts.fct_payments WHERE processor = 'gift_card' "
                "AND status = 'succeeded' AND order_id IS NOT NULL ORDER BY channel, order_id, attempted_at, "
                "payment_id").fetchall():
            order = orders.get((channel, str(order_id)))
            if order is not None:
                order.add_tender(str(payment_id), to_decimal(amount))
    return orders


def load_payouts(con: duckdb.DuckDBPyConnection) -> list[MartPayout]:
    """Paid payouts with their transactions split into the summary's line kinds."""
    needed = [("marts", "fct_payouts"), ("intermediate", "int_balance_transactions")]
    if not all(_has_table(con, *t) for t in needed):
        return []
    recon = {}
    if _has_table(con, "marts", "rpt_payout_reconciliation"):
        recon = {(r[0], r[1]): (r[2], r[3]) for r in con.execute(
            "SELECT channel, payout_id, reconciliation_status, break_reason FROM marts.rpt_payout_reconciliation"
        ).fetchall()}
    payouts: dict[tuple[str, str], MartPayout] = {}
    for channel, payout_id, payout_date, currency, amount, status in con.execute(
            "SELECT channel, payout_id, payout_date, currency, amount, status FROM marts.fct_payouts "
            "ORDER BY payout_date, channel, payout_id").fetchall():
        status_, reason = recon.get((channel, str(payout_id)), ("matched", None))
        payouts[(channel, str(payout_id))] = MartPayout(channel, str(payout_id), payout_date, (currency or "").upper(),
                                                        to_decimal(amount), (status or "").lower(),
                                                        status_ == "matched", reason)
    orders = load_order_money(con)
    trade_payments = set()
    if _has_table(con, "marts", "fct_payments"):
        trade_payments = {(r[0], str(r[1])) for r in con.execute(
            "SELECT channel, payment_id FROM marts.fct_payments WHERE invoice_number IS NOT NULL").fetchall()}
        trade_payments |= {(r[0], str(r[1])) for r in con.execute(
            "SELECT channel, balance_transaction_id FROM marts.fct_payments "
            "WHERE invoice_number IS NOT NULL AND balance_transaction_id IS NOT NULL").fetchall()}
    refund_sources = {}
    if _has_table(con, "marts", "fct_refunds"):
        if {"refund_id", "payment_id"} <= _columns(con, "marts", "fct_refunds"):
            refund_sources = {(r[0], str(r[1])): str(r[2]) for r in con.execute(
                "SELECT channel, refund_id, payment_id FROM marts.fct_refunds").fetchall()}
    itemised = {r[0] for r in con.execute(  # channels whose settlements carry tax as rows of its own
        "SELECT DISTINCT channel FROM intermediate.int_balance_transactions WHERE lower(category) LIKE '%tax%'"
    ).fetchall()}
    for channel, payout_id, kind, category, order_id, source_id, amount, fee in con.execute(
            "SELECT channel, payout_id, type, category, order_id, source_id, amount, fee "
            "FROM intermediate.int_balance_transactions WHERE payout_id IS NOT NULL AND type <> 'payout'").fetchall():
        payout = payouts.get((channel, str(payout_id)))
        if payout is None:
            continue
        amount, fee = to_decimal(amount), to_decimal(fee)
        payout.parts["fees"] -= fee
        source = str(source_id) if source_id is not None else None
        if kind in ("charge", "refund"):
            # money that is not a sale of an order: card payments of trade invoices (already in
            # clearing through their payments) and their refunds; a movement without an order is
            # treated the same way, never as revenue
            trade = (channel, source) in trade_payments or order_id is None or (
                kind == "refund" and (channel, refund_sources.get((channel, source or ""), "")) in trade_payments)
            if trade:
                payout.parts["trade_payments" if kind == "charge" else "trade_refunds"] += amount
                continue
            base = "sales" if kind == "charge" else "refunds"
            if category and "tax" in str(category).lower():  # the processor itemises the tax itself
                payout.parts[f"{base}_tax"] += amount
                continue
            tax_share, gift_cards = Decimal(0), Decimal(0)
            order = orders.get((channel, str(order_id)))
            if channel not in itemised and order is not None:
                if kind == "charge":
                    gift_cards, tax_share = order.split_charge(amount)
                else:
                    tax_share = order.tax_of_refund(amount)
            payout.parts[base] += amount - tax_share - gift_cards
            payout.parts[f"{base}_tax"] += tax_share
            payout.parts["gift_cards"] += gift_cards
        else:
            payout.parts["adjustments"] += amount
    return list(payouts.values())


def summary_payload(p: MartPayout, gift_account: str = GIFT_CARD_ACCOUNT) -> dict:
    """The summary invoice of a positive payout, or the credit note of a negative one (signs turned)."""
    title = CONTACT_NAMES.get(p.channel, p.channel.title())
    sign = Decimal(-1) if p.amount < 0 else Decimal(1)
    lines = [{"Description": text.format(title=title), "Quantity": Decimal(1),
              "UnitAmount": money(sign * p.parts[kind]), "LineAmount": money(sign * p.parts[kind]),
              "AccountCode": account or gift_account, "TaxType": "NONE", "TaxAmount": Decimal("0.00")}
             for kind, text, account in LINES if money(p.parts.get(kind, Decimal(0))) != 0]
    common = {"Reference": f"{title} payout {p.payout_id}", "Date": p.payout_date.isoformat(),
              "CurrencyCode": p.currency, "LineAmountTypes": "Exclusive", "Status": "AUTHORISED", "LineItems": lines}
    if p.amount < 0:
        return {"Type": "ACCRECCREDIT", "CreditNoteNumber": p.number, **common}
    return {"Type": "ACCREC", "InvoiceNumber": p.number, "DueDate": p.payout_date.isoformat(), **common}


def _doc_id(remote: dict) -> str:
    return remote.get("InvoiceID") or remote["CreditNoteID"]


def find_credit_notes(run: Any, numbers: list[str]) -> dict[str, dict]:
    from finance_pipeline.platforms.xero.publish import _quote

    where = " OR ".join(f'CreditNoteNumber=="{_quote(n)}"' for n in numbers)
    body = run.client.get_json("CreditNotes", params={"where": where, "page": 1, "pageSize": 1000})
    return {c["CreditNoteNumber"]: c for c in body.get("CreditNotes", [])
            if c.get("CreditNoteNumber") in numbers and c.get("Status") not in ("DELETED", "VOIDED")}


def all_credit_notes(run: Any) -> dict[str, dict]:
    from finance_pipeline.http.pagination import page_number_pages

    found: dict[str, dict] = {}
    for body in page_number_pages(run.client, "CreditNotes", {"pageSize": 1000}, page_size=1000,
                                  items=lambda b: b.get("CreditNotes", [])):
        for c in body.get("CreditNotes", []):
            if c.get("Status") not in ("DELETED", "VOIDED"):
                found.setdefault(c.get("CreditNoteNumber"), c)
    return found


def send_credit_notes(run: Any, batch: list[Write]) -> list:
    from finance_pipeline.platforms.xero.credit_notes import _call
    from finance_pipeline.platforms.xero.publish import _element_outcome
    from finance_pipeline.publish.mechanics import idempotency_key

    key = idempotency_key("xero-credit-notes", [(w.key, w.content_hash, w.remote_id) for w in batch])
    answer = _call(run, "POST", "CreditNotes", key, {"CreditNotes": [w.body for w in batch]},
                   {"summarizeErrors": "false", "unitdp": "4"})
    return [_element_outcome(e, "CreditNoteID") for e in answer.get("CreditNotes", [])]


def _remote_current(remote: dict, payload: dict, amount: Decimal) -> bool:
    """The summary Xero holds settles this payout: same total, still standing (lines are not
    compared: a posted payout is not rewritten when the line mapping changes)."""
    return money(remote.get("Total", 0)) == money(amount) and remote.get("Status") in ("AUTHORISED", "PAID")


def publish_payouts(run: Any, con: duckdb.DuckDBPyConnection) -> None:
    """Contacts per channel, a summary invoice per paid payout, and its payment from the bank."""
    payouts = load_payouts(con)
    if not payouts:
        return
    ledger, result = run.ledger, run.result
    counts = result.of("payout")
    eligible, refused = [], []
    for p in payouts:
        if p.status != "paid":
            continue  # in transit: posted once it lands
        if not p.reconciled:
            refused.append((p.number, None, f"payout does not reconcile: {p.break_reason or 'break'}", None))
        elif p.amount == 0:
            refused.append((p.number, None, "a payout of zero moves no money: nothing to match in the bank; "
                                            "not posted", None))
        else:
            eligible.append(p)
    if refused and run.dry is None:
        ledger.mark_failed_many("payout", refused)
    counts.failed += len(refused)
    result.errors.extend(ItemError("payout", k, e) for k, _, e, _ in refused)
    run.rejected.extend(("payout", k, None, e) for k, _, e, _ in refused)

    # one contact per channel, through the ordinary contact path
    channel_contacts = {}
    for p in eligible:
        number = f"payout-{p.channel}"
        channel_contacts[number] = {"ContactNumber": number, "Name": CONTACT_NAMES.get(p.channel, p.channel.title())}
    desired_contacts = {k: Desired(k, content_hash({"v": "xero-payout-contact/1", **v}), v)
                        for k, v in channel_contacts.items()}
    resolve_unknown(ledger, "contact", desired_contacts, run.find_contacts, remote_id_of=lambda c: c["ContactID"],
                    is_current=lambda r, w: r.get("Name") == w.record["Name"], counts=result.of("contact"))
    plan = ledger.plan("contact", [(k, d.content_hash) for k, d in desired_contacts.items()])
    run._write("contact", [Write("create", k, desired_contacts[k].content_hash, None, desired_contacts[k].record)
                           for k in plan.new], run.send_contacts)
    contact_ids = {k: e.remote_id for k, e in ledger.entries_for("contact", list(channel_contacts)).items()
                   if e.remote_id and e.status == "done"}

    desired: dict[str, Desired[tuple[MartPayout, dict]]] = {}
    gift_account = gift_card_account()
    for p in eligible:
        payload = summary_payload(p, gift_account)
        # a posted payout is history: only what the bank saw (amount, date, currency) is hashed, so a
        # later change of the line mapping never tries to rewrite a paid summary (Xero would refuse)
        desired[p.number] = Desired(p.number, content_hash({"v": PAYOUT_MAPPING, "number": p.number,
                                                            "amount": p.amount, "date": p.payout_date,
                                                            "currency": p.currency}), (p, payload))
    resolve_unknown(ledger, "payout", desired, lambda keys: {**run.find_invoices(keys), **find_credit_notes(run, keys)},
                    remote_id_of=_doc_id,
                    is_current=lambda r, w: _remote_current(r, w.record[1], abs(w.record[0].amount)),
                    counts=counts, batch_size=40, find_all=lambda: {**run.all_invoices(), **all_credit_notes(run)},
                    scan_above=120)
    plan = ledger.plan("payout", [(k, d.content_hash) for k, d in desired.items()])
    counts.unchanged += len(plan.unchanged)
    run._unresolved("payout", plan.unresolved)
    writes, waiting = [], 0
    for key, remote_id in [(k, None) for k in plan.new] + [(e.business_key, e.remote_id) for e in plan.changed]:
        p, payload = desired[key].record
        contact = contact_ids.get(f"payout-{p.channel}") or (run.dry and f"(new contact payout-{p.channel})")
        if contact is None:
            waiting += 1
            continue
        body = {"Contact": {"ContactID": contact}, **payload}
        if remote_id:
            body["CreditNoteID" if p.amount < 0 else "InvoiceID"] = remote_id
        writes.append(Write("create" if remote_id is None else "update", key, desired[key].content_hash, remote_id,
                            body))
    credits = {p.number for p in eligible if p.amount < 0}
    run._write("payout", [w for w in writes if w.key not in credits], run.send_invoices)
    run._write("payout", [w for w in writes if w.key in credits], lambda batch: send_credit_notes(run, batch))
    run.payouts_expected = {p.number: p.amount for p in eligible}

    # the payment from the bank: the deposit Xero's bank feed will match (its own ledger key, so a
    # crash between the invoice and its payment leaves the payment to the next run)
    invoice_ids = {k: e.remote_id for k, e in ledger.entries("payout").items() if e.remote_id and e.status == "done"}
    if run.dry is not None:
        invoice_ids.update({w.key: w.remote_id or f"(new invoice {w.key})" for w in writes})
    pay_desired: dict[str, Desired[dict]] = {}
    for p in eligible:
        if p.number not in invoice_ids:
            continue
        target = {"CreditNote": {"CreditNoteID": invoice_ids[p.number]}} if p.amount < 0 else \
            {"Invoice": {"InvoiceID": invoice_ids[p.number]}}
        body = {**target, "Account": {"Code": BANK_ACCOUNT}, "Date": p.payout_date.isoformat(),
                "Amount": money(abs(p.amount)), "Reference": p.number}
        pay_desired[p.number] = Desired(p.number, content_hash({"v": PAYOUT_MAPPING, "payment": body}), body)
    pay_counts = result.of("payout_payment")
    resolve_unknown(ledger, "payout_payment", pay_desired, run.find_payments, remote_id_of=lambda r: r["PaymentID"],
                    is_current=lambda r, w: money(r.get("Amount", 0)) == w.record["Amount"], counts=pay_counts,
                    batch_size=40, find_all=run.all_payments, scan_above=120)
    pay_plan = ledger.plan("payout_payment", [(k, d.content_hash) for k, d in pay_desired.items()])
    pay_counts.unchanged += len(pay_plan.unchanged)
    run._unresolved("payout_payment", pay_plan.unresolved)
    run._write("payout_payment", [Write("create", k, pay_desired[k].content_hash, None, pay_desired[k].record)
                                  for k in pay_plan.new], run.send_payments)
    if waiting:
        log.info("xero: %d payouts wait for their channel contact", waiting)
