"""Gift cards (scenario S12) in Xero, on the small world's Shopify marts: the card sold goes to the gift
card liability in its payout's summary (which still equals the deposit), the card spent comes out of
it in a manual journal a day that credits sales and VAT as the marts do, to the cent; re-runs write
nothing; lost, interrupted and changed journals are found, updated or voided, never duplicated."""
from __future__ import annotations

import shutil
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from conftest import make_settings
from pipeline_helpers import channel_run
from xero_fixtures import XeroEnv, start_xero
from finance_pipeline.platforms.xero.gift_cards import OBJECT_TYPE, load_redemptions
from finance_pipeline.platforms.xero.payouts import load_order_money
from finance_pipeline.platforms.xero.publish import publish_trade_invoices

GIFT = "845"


@pytest.fixture(scope="module")
def shopify_run(tmp_path_factory, small_world_dir) -> Path:
    return channel_run(tmp_path_factory, small_world_dir, {"shopify"})


@pytest.fixture
def env(shopify_run, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(shopify_run, data, ignore=shutil.ignore_patterns("dagster*"))
    settings = make_settings(data)
    running = start_xero(settings)
    yield XeroEnv(settings, running)
    running.stop()


def publish(env: XeroEnv):
    return publish_trade_invoices(env.settings, env.connection(), env.warehouse)


def q(env: XeroEnv, sql: str, params=()):
    con = duckdb.connect(str(env.warehouse), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def journal_lines(env: XeroEnv) -> dict[str, dict[str, Decimal]]:
    """{journal date: {account: amount}} of the journals Xero holds (voided ones left out)."""
    out: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for j in env.emulator.manual_journals():
        if j["Status"] == "POSTED":
            for line in j["JournalLines"]:
                out[j["Date"]][line["AccountCode"]] += line["LineAmount"]
    return out


def test_gift_cards_reach_xero_as_the_marts_book_them(env):
    (sold_n,), = q(env, "SELECT count(*) FROM marts.fct_orders WHERE gift_card_amount > 0")
    (spent_n, spent), = q(env, "SELECT count(*), sum(amount) FROM marts.fct_payments WHERE processor = 'gift_card'")
    assert sold_n >= 20 and spent_n >= 20

    first = publish(env)
    assert first.ok, first.summary()
    assert first.mismatches == []  # the read-back covers summaries, their payments and the journals

    # (a) every summary invoice equals its deposit; the cards sold sit in the liability, not in sales or VAT
    deposits = {f"PO-{c}-{p}": a for c, p, a in q(env, "SELECT channel, payout_id, amount FROM marts.fct_payouts "
                                                       "WHERE status = 'paid' AND amount > 0")}
    summaries = {d["InvoiceNumber"]: d for d in env.emulator.invoices() if d["InvoiceNumber"].startswith("PO-")}
    assert summaries and set(summaries) <= set(deposits)
    for number, doc in summaries.items():
        assert doc["Total"] == deposits[number] and doc["AmountPaid"] == deposits[number], number
    in_xero = defaultdict(Decimal)
    for number, doc in summaries.items():
        for line in doc["LineItems"]:
            if line["AccountCode"] == GIFT:
                assert line["Description"] == "Gift cards sold" and line["TaxType"] == "NONE"
                in_xero[number.split("-", 2)[2]] += line["LineAmount"]
    # the marts: each gift card order's card value, in the payout that carried its charge
    in_marts = dict(q(env, """
        SELECT b.payout_id, sum(o.gift_card_amount) FROM marts.fct_orders o
        JOIN intermediate.int_balance_transactions b ON b.channel = o.channel AND b.order_id = o.order_id
         AND b.type = 'charge'
        JOIN marts.fct_payouts p ON p.channel = b.channel AND p.payout_id = b.payout_id AND p.status = 'paid'
        WHERE o.gift_card_amount > 0 GROUP BY 1"""))
    assert {k: v for k, v in in_xero.items()} == in_marts
    assert sum(in_marts.values()) == q(env, "SELECT sum(gift_card_amount) FROM marts.fct_orders")[0][0]

    # (b) one journal a day: Dr liability = the GL's 2400 debits for the cards spent that day,
    # Cr sales + VAT the same; the lines balance
    gl = dict(q(env, """SELECT g.posted_on::varchar, sum(g.debit_home) FROM marts.fct_gl_entries g
                        JOIN marts.fct_payments p ON g.entry_id = 'payment:' || p.channel || ':' || p.payment_id
                        WHERE p.processor = 'gift_card' AND g.account_code = '2400' GROUP BY 1"""))
    journals = journal_lines(env)
    assert {day: lines[GIFT] for day, lines in journals.items()} == gl
    assert sum(gl.values()) == spent
    for day, lines in journals.items():
        assert set(lines) <= {GIFT, "200", "825"} and sum(lines.values()) == 0, day
        assert lines["200"] < 0 and lines.get("825", Decimal(0)) <= 0
    assert len(journals) == len(gl) < spent_n  # some days have two tenders

    # the order's VAT, split between its charge (payout summary) and its card tenders (journal), is
    # the order's VAT in the marts to the cent, and the charge carries the cards sold exactly
    con = duckdb.connect(str(env.warehouse), read_only=True)
    try:
        orders = load_order_money(con)
        days = load_redemptions(con, orders)
        charges = con.execute("""SELECT b.order_id, sum(b.amount) FROM intermediate.int_balance_transactions b
                                 WHERE b.channel = 'shopify' AND b.type = 'charge' GROUP BY 1""").fetchall()
        vat = dict(con.execute("""SELECT source_id, sum(credit_home - debit_home) FROM marts.fct_gl_entries
                                  WHERE source_type = 'order' AND description LIKE 'Tax collected%'
                                  GROUP BY 1""").fetchall())
    finally:
        con.close()
    assert sum(d.tax for d in days.values()) == sum(-lines.get("825", Decimal(0)) for lines in journals.values())
    card_paid = {oid: o for (c, oid), o in orders.items() if o.card_paid}
    partly = 0
    for order_id, amount in charges:
        order = orders[("shopify", str(order_id))]
        gift, tax = order.split_charge(amount)
        if order.gift_cards:
            assert gift == order.gift_cards, order_id
        if order.card_paid:
            partly += 1
            assert tax + order.card_tax == vat[str(order_id)], order_id
    assert partly >= 1 and len(card_paid) > partly  # wholly card-paid orders have no charge at all
    for order_id, order in card_paid.items():
        if order.card_paid == order.total:
            assert order.card_tax == vat.get(order_id, Decimal(0)), order_id

    # a re-run writes nothing and the read-back still passes
    before = env.emulator.stats()
    second = publish(env)
    assert second.ok and second.writes == 0 and second.mismatches == []
    assert second.of(OBJECT_TYPE).unchanged == len(gl)
    after = env.emulator.stats()
    for counter in ("manual_journals_created", "manual_journals_updated", "invoices_created", "payments_created"):
        assert after[counter] == before[counter], counter


def _ledger(env: XeroEnv, sql: str, params=()) -> None:
    con = duckdb.connect(str(env.warehouse))
    try:
        con.execute(sql, list(params))
    finally:
        con.close()


def test_journals_are_found_updated_and_voided_never_duplicated(env):
    assert publish(env).ok
    posted = {j["Date"]: j["ManualJournalID"] for j in env.emulator.manual_journals()}
    n = len(posted)

    # the ledger lost: every journal is found by its narration and adopted, none posted again
    _ledger(env, "DELETE FROM ops.publish_ledger WHERE destination = 'xero' AND object_type = ?", [OBJECT_TYPE])
    adopted = publish(env)
    assert adopted.ok and adopted.writes == 0 and adopted.of(OBJECT_TYPE).adopted == n, adopted.summary()
    # a write interrupted before its answer (left pending): looked up, found current, recorded
    _ledger(env, "UPDATE ops.publish_ledger SET status = 'pending' WHERE destination = 'xero' AND object_type = ?",
            [OBJECT_TYPE])
    recovered = publish(env)
    assert recovered.ok and recovered.writes == 0 and recovered.of(OBJECT_TYPE).recovered == n
    assert env.emulator.stats()["manual_journals"] == n

    # the marts change: a tender dropped from a two-tender day updates that day's journal in place;
    # the only tender of another day goes, and that day's journal is voided
    by_day = q(env, """SELECT g.posted_on::varchar, list(p.payment_id ORDER BY p.payment_id) FROM marts.fct_gl_entries g
                       JOIN marts.fct_payments p ON g.entry_id = 'payment:' || p.channel || ':' || p.payment_id
                       WHERE p.processor = 'gift_card' AND g.account_code = '2400' GROUP BY 1 ORDER BY 1""")
    two = next((day, ids) for day, ids in by_day if len(ids) == 2)
    one = next((day, ids) for day, ids in by_day if len(ids) == 1)
    gone = [two[1][0], one[1][0]]
    _ledger(env, "DELETE FROM marts.fct_payments WHERE payment_id IN (?, ?)", gone)
    changed = publish(env)
    assert changed.ok, changed.summary()
    counts = changed.of(OBJECT_TYPE)
    assert (counts.updated, counts.voided, counts.created) == (1, 1, 0)
    assert changed.mismatches == []
    docs = {j["ManualJournalID"]: j for j in env.emulator.manual_journals()}
    assert len(docs) == n and docs[posted[one[0]]]["Status"] == "VOIDED"
    (left,), = q(env, "SELECT amount FROM marts.fct_payments WHERE payment_id = ?", [two[1][1]])
    lines = {ln["AccountCode"]: ln["LineAmount"] for ln in docs[posted[two[0]]]["JournalLines"]}
    assert lines[GIFT] == left and docs[posted[two[0]]]["Status"] == "POSTED"
    assert publish(env).writes == 0


def test_kill_9_while_journals_are_written(env, tmp_path):
    """kill -9 in the gap between Xero committing a journal write and the publisher hearing of it, five
    times, the marts changing between runs (a tender dropped: one day's journal updated or voided);
    then a clean run: one journal per day ever posted, never a second, the read-back clean."""
    import json

    from publish_kill import run_to_end, run_trials
    from finance_pipeline.sandbox import runtime

    runtime.write_endpoints(env.settings, {"xero": env.running})
    tenders = [r[0] for r in q(env, "SELECT payment_id FROM marts.fct_payments WHERE processor = 'gift_card' "
                                    "ORDER BY attempted_at")]
    env.emulator.write_delay_s = 0.4

    def writes() -> int:
        stats = env.emulator.stats()
        return stats["manual_journals_created"] + stats["manual_journals_updated"]

    kills = []
    for trial in range(5):
        kills += run_trials("xero", env.settings, tmp_path, trials=1, writes=writes, max_wait_s=0.3, seed=trial,
                            first_write_timeout_s=120)
        _ledger(env, "DELETE FROM marts.fct_payments WHERE payment_id = ?", [tenders[trial * 5]])
    assert sum(1 for _, w in kills if w > 0) >= 4, kills
    env.emulator.write_delay_s = 0.0
    summary = json.loads(run_to_end("xero", env.settings, tmp_path))
    assert summary["mismatch_count"] == 0 and summary["ok"], summary
    per_key = defaultdict(int)
    for j in env.emulator.manual_journals():
        per_key[j["Narration"]] += 1
    assert per_key and set(per_key.values()) == {1}  # never a second journal for a day
    (pending,), = q(env, "SELECT count(*) FROM ops.publish_ledger WHERE status = 'pending'")
    assert pending == 0
    # what stands in Xero is the marts' figures for the tenders that are left
    (left,), = q(env, "SELECT sum(amount) FROM marts.fct_payments WHERE processor = 'gift_card'")
    assert sum(lines[GIFT] for lines in journal_lines(env).values()) == left
