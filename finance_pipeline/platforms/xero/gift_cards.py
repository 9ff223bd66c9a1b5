"""Gift cards spent (scenario S12): one Xero manual journal per channel and business day.

A gift card the shop sold earlier was booked to the gift card liability when it was sold (the
"Gift cards sold" line of the payout summary, `payouts.py`).  When a customer spends it, the order
earns its sales and VAT but no money moves through a processor, so no payout ever carries that
part of the order.  The marts book it as a payment out of the liability (`fct_gl_entries`:
Dr 2400 on the payment entry, the order entry having credited sales and VAT); Xero gets the same
as one journal a day per channel:

    Dr  gift card liability (XERO_GIFT_CARD_ACCOUNT)   the day's tenders (the GL's 2400 debits)
    Cr  200 Sales, ex tax                              tenders less their tax
    Cr  825 Tax collected                              each tender's tax share of its order

The tax share of a tender is its amount × the order's tax / the order's revenue (total less gift
cards sold on it), to the cent (rounded cumulatively over the order's tenders, so an order paid
wholly by cards gives exactly its tax); the Shopify Payments charge of the same order carries the rest of
the order's tax (`OrderMoney.split_charge`), so the two add up to the order's VAT exactly.

Journals are keyed `GC-<channel>-<YYYY-MM-DD>` (the GL's business date `posted_on`), and the key
ends the `Narration` in brackets: Xero's journals have no number of their own, so that is what a
look-up after a crash finds them by.  A day whose figures change is updated in place (Xero lets a
posted journal be edited); a day that no longer has tenders is voided.
"""
from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Iterable

import duckdb

from finance_pipeline.platforms.xero.payouts import OrderMoney, gift_card_account, load_order_money
from finance_pipeline.platforms.xero.wire import money
from finance_pipeline.publish.ledger import content_hash
from finance_pipeline.publish.marts import _has_table, to_decimal
from finance_pipeline.publish.mechanics import Desired, Mismatch, Outcome, Write, resolve_unknown

log = logging.getLogger("finance_pipeline.xero.gift_cards")

OBJECT_TYPE = "gift_card_journal"
JOURNAL_MAPPING = "xero-gift-card-journal/1"
GL_GIFT_CARD_ACCOUNT = "2400"  # the marts' gift card liability (seed gl_accounts)
SALES_ACCOUNT, TAX_ACCOUNT = "200", "825"
_KEY_IN_NARRATION = re.compile(r"\[(GC-.+-\d{4}-\d{2}-\d{2})\]$")


@dataclass
class RedemptionDay:
    channel: str
    day: date
    tenders: Decimal = Decimal(0)  # home currency, as the GL debits the liability
    tax: Decimal = Decimal(0)
    payments: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return journal_key(self.channel, self.day)


def journal_key(channel: str, day: date) -> str:
    return f"GC-{channel}-{day.isoformat()}"


def narration(key: str) -> str:
    channel, day = key[3:-11], key[-10:]
    return f"Gift cards spent on {channel.title()} orders, {day} [{key}]"


def load_redemptions(con: duckdb.DuckDBPyConnection, orders: dict[tuple[str, str], OrderMoney] | None = None
                     ) -> dict[str, RedemptionDay]:
    """The GL's gift card tenders (payment entries debiting 2400), grouped by channel and day."""
    if not (_has_table(con, "marts", "fct_gl_entries") and _has_table(con, "marts", "fct_payments")):
        return {}
    orders = load_order_money(con) if orders is None else orders
    days: dict[str, RedemptionDay] = {}
    for channel, posted_on, payment_id, order_id, amount in con.execute(
            "SELECT g.channel, g.posted_on, p.payment_id, p.order_id, g.debit_home - g.credit_home "
            "FROM marts.fct_gl_entries g JOIN marts.fct_payments p "
            "  ON g.entry_id = 'payment:' || p.channel || ':' || p.payment_id "
            "WHERE p.processor = 'gift_card' AND g.account_code = ? "
            "ORDER BY g.channel, g.posted_on, p.payment_id", [GL_GIFT_CARD_ACCOUNT]).fetchall():
        amount = to_decimal(amount)
        if not amount:
            continue
        day = days.setdefault(journal_key(channel, posted_on), RedemptionDay(channel, posted_on))
        day.tenders += amount
        order = orders.get((channel, str(order_id)))
        if order is not None:
            day.tax += order.tender_tax.get(str(payment_id), Decimal(0))
        day.payments.append(str(payment_id))
    return days


def journal_payload(day: RedemptionDay, gift_account: str) -> dict:
    title = day.channel.title()
    lines = [
        {"LineAmount": money(day.tenders), "AccountCode": gift_account, "TaxType": "NONE",
         "Description": f"Gift cards spent: {len(day.payments)}"},
        {"LineAmount": -money(day.tenders - day.tax), "AccountCode": SALES_ACCOUNT, "TaxType": "NONE",
         "Description": f"Sales, {title}, paid by gift card (ex tax)"},
    ]
    if money(day.tax):
        lines.append({"LineAmount": -money(day.tax), "AccountCode": TAX_ACCOUNT, "TaxType": "NONE",
                      "Description": f"Tax collected on {title} sales paid by gift card"})
    return {"Narration": narration(day.key), "Date": day.day.isoformat(), "Status": "POSTED",
            "LineAmountTypes": "NoTax", "JournalLines": lines}


def _by_account(lines: Iterable[dict]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        out[str(line.get("AccountCode"))] += money(line.get("LineAmount", 0))
    return {k: v for k, v in out.items() if v}


def _wire_day(value: Any) -> date | None:
    from finance_pipeline.platforms.xero.publish import _wire_date

    return _wire_date(value)


def journal_mismatches(key: str, remote: dict, payload: dict) -> list[Mismatch]:
    out = []
    if remote.get("Status") != "POSTED":
        out.append(Mismatch(key, "Status", "POSTED", remote.get("Status")))
    if _wire_day(remote.get("Date")) != date.fromisoformat(payload["Date"]):
        out.append(Mismatch(key, "Date", payload["Date"], remote.get("Date")))
    want, got = _by_account(payload["JournalLines"]), _by_account(remote.get("JournalLines") or [])
    for account in sorted(set(want) | set(got)):
        if want.get(account, Decimal(0)) != got.get(account, Decimal(0)):
            out.append(Mismatch(key, f"JournalLines[{account}]", want.get(account, Decimal("0.00")),
                                got.get(account, Decimal("0.00"))))
    return out


def _index(journals: Iterable[dict]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = defaultdict(list)
    for j in journals:
        match = _KEY_IN_NARRATION.search(str(j.get("Narration") or ""))
        if match and j.get("Status") not in ("VOIDED", "DELETED"):
            found[match.group(1)].append(j)
    return found


def find_journals(run: Any, keys: list[str]) -> dict[str, dict]:
    from finance_pipeline.platforms.xero.publish import _quote

    where = " OR ".join(f'Narration=="{_quote(narration(k))}"' for k in keys)
    body = run.client.get_json("ManualJournals", params={"where": where, "page": 1, "pageSize": 1000})
    return {k: js[0] for k, js in _index(body.get("ManualJournals", [])).items() if k in keys}


def all_journals(run: Any) -> list[dict]:
    from finance_pipeline.http.pagination import page_number_pages

    seen: dict[str, dict] = {}  # by id: a record repeated at a page boundary is counted once
    for body in page_number_pages(run.client, "ManualJournals", {"pageSize": 1000}, page_size=1000,
                                  items=lambda b: b.get("ManualJournals", [])):
        for j in body.get("ManualJournals", []):
            seen.setdefault(j.get("ManualJournalID"), j)
    return list(seen.values())


def _send(run: Any, batch: list[Write], method: str) -> list[Outcome]:
    from finance_pipeline.platforms.xero.credit_notes import _call
    from finance_pipeline.platforms.xero.publish import _element_outcome
    from finance_pipeline.publish.mechanics import idempotency_key

    key = idempotency_key(f"xero-journals-{method.lower()}", [(w.key, w.content_hash, w.remote_id) for w in batch])
    answer = _call(run, method, "ManualJournals", key, {"ManualJournals": [w.body for w in batch]},
                   {"summarizeErrors": "false"})
    return [_element_outcome(e, "ManualJournalID") for e in answer.get("ManualJournals", [])]


def publish_gift_card_journals(run: Any, con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    """Post, update or void the redemption journals; returns {key: payload} for the read-back."""
    days = load_redemptions(con)
    ledger, result = run.ledger, run.result
    if not days and not ledger.entries(OBJECT_TYPE):
        return {}
    counts = result.of(OBJECT_TYPE)
    gift_account = gift_card_account()
    desired: dict[str, Desired[dict]] = {}
    for key, day in days.items():
        payload = journal_payload(day, gift_account)
        desired[key] = Desired(key, content_hash({"v": JOURNAL_MAPPING, "journal": payload}), payload)
    resolve_unknown(ledger, OBJECT_TYPE, desired, lambda keys: find_journals(run, keys),
                    remote_id_of=lambda r: r["ManualJournalID"],
                    is_current=lambda r, w: not journal_mismatches(w.key, r, w.record), counts=counts,
                    batch_size=40, find_all=lambda: {k: js[0] for k, js in _index(all_journals(run)).items()},
                    scan_above=120)
    plan = ledger.plan(OBJECT_TYPE, [(k, d.content_hash) for k, d in desired.items()])
    counts.unchanged += len(plan.unchanged)
    run._unresolved(OBJECT_TYPE, plan.unresolved)
    voided = content_hash({"v": JOURNAL_MAPPING, "voided": True})
    again = [e.business_key for e in plan.changed if e.content_hash == voided]  # a voided journal stays voided
    creates = [Write("create", k, desired[k].content_hash, None, desired[k].record) for k in [*plan.new, *again]]
    updates = [Write("update", e.business_key, desired[e.business_key].content_hash, e.remote_id,
                     {"ManualJournalID": e.remote_id, **desired[e.business_key].record})
               for e in plan.changed if e.content_hash != voided]
    voids = [Write("void", k, voided, e.remote_id, {"ManualJournalID": e.remote_id, "Status": "VOIDED"})
             for k, e in ledger.entries(OBJECT_TYPE).items()
             if k not in desired and e.remote_id and e.status == "done" and e.content_hash != voided]
    run._write(OBJECT_TYPE, creates, lambda batch: _send(run, batch, "PUT"))
    run._write(OBJECT_TYPE, updates + voids, lambda batch: _send(run, batch, "POST"))
    return {k: d.record for k, d in desired.items()}


def compare_journals(run: Any, expected: dict[str, dict]) -> list[Mismatch]:
    """Each day's journal in Xero once, posted, with the marts' figures per account; nothing we
    manage left standing that the marts no longer have."""
    journals = all_journals(run)
    by_key = _index(journals)
    out: list[Mismatch] = []
    for key, payload in expected.items():
        found = by_key.pop(key, [])
        if len(found) != 1:
            out.append(Mismatch(key, "count", 1, len(found)))
            continue
        out.extend(journal_mismatches(key, found[0], payload))
    managed = {e.remote_id for e in run.ledger.entries(OBJECT_TYPE).values() if e.remote_id}
    for key, rs in by_key.items():
        for r in rs:
            if r.get("ManualJournalID") in managed:
                out.append(Mismatch(key, "presence", "not in the marts", r.get("Status")))
    return out
