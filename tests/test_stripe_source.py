"""The Stripe dlt source end to end: emulator -> source -> DuckDB, compared with the world's truth."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from finance_pipeline.ingest.pipeline import make_pipeline, run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.stripe.emulator import StripeEmulator
from finance_pipeline.platforms.stripe.source import stripe_source
from tests.stripe_helpers import TABLES, jump, load, loaded, resource_state, truth

UTC = timezone.utc


def test_source_builds_without_a_connection():
    source = stripe_source(None)
    assert source.name == "stripe"
    assert set(source.resources) == set(TABLES)
    assert source.resources["charges"].write_disposition == "merge"
    with pytest.raises(Exception, match="without a connection"):
        list(source.resources["charges"])


def test_load_equals_the_world_and_a_rerun_adds_nothing(settings, sandbox, start_emulator):
    running = start_emulator(StripeEmulator, sandbox, time_scale=settings.time_scale)
    first = load(settings, running)
    expected = truth(sandbox)
    got = loaded(settings)
    for table in TABLES:
        assert got[table] == expected[table], table
    assert first.rows["charges"] == len(expected["charges"])
    assert first.quarantined == 0
    statuses = {r[5] for r in got["charges"]}
    assert statuses == {"succeeded", "failed"}  # P3: failures are loaded too
    assert {r[3] for r in got["disputes"]} >= {"won", "lost"}  # P6, P7 (others may still be open)

    second = load(settings, running)
    assert loaded(settings) == got, "a re-run at the same clock changes nothing and duplicates nothing"
    assert sum(second.rows.values()) < sum(first.rows.values()) / 5, "the re-run reads only the lag windows"
    assert resource_state(settings, "charges")["last_run"]["mode"] == "incremental"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        types = dict(con.execute("select column_name, data_type from information_schema.columns "
                                 "where table_schema = 'raw_stripe' and table_name = 'balance_transactions'").fetchall())
    assert types["amount"] == "BIGINT" and types["created"] == "TIMESTAMP WITH TIME ZONE"
    assert types["exchange_rate"].startswith("DECIMAL") and types["fee_details"] == "VARCHAR"


def test_clock_advances_bring_new_and_changed_objects(settings, sandbox, start_emulator):
    """(c) New charges, refunds and disputes on *old* charges, payouts landing: through the events
    feed after 20 days, through the full re-list once the events cursor has expired.

    The window is chosen from the world: it opens 5 days before a dispute that closes within
    40 days of opening, so the dispute opens (and moves to under_review) in the first 20 days
    and closes during the next 30."""
    running = start_emulator(StripeEmulator, sandbox, time_scale=settings.time_scale)
    with sandbox.connect() as con:
        opened, refund_times = con.execute(
            """select min(created), (select list(created) from stripe_refunds) from stripe_disputes
               where created > timestamptz '2026-02-15 00:00:00+00' and closed_at < created + interval 40 day""",
        ).fetchone()
    start = opened - timedelta(days=5)
    jump(sandbox, start)
    load(settings, running)
    before = loaded(settings)
    assert before == truth(sandbox)
    in_transit = {r[0] for r in before["payouts"] if r[2] == "in_transit"}
    assert in_transit

    jump(sandbox, sandbox.clock + timedelta(days=20))
    load(settings, running)
    after = loaded(settings)
    assert after == truth(sandbox)
    state = resource_state(settings, "charges")["last_run"]
    assert state["mode"] == "incremental" and state["changed_by_events"] > 0 and state["refetched"] > 0
    old = {r[0]: r for r in before["charges"]}
    changed_old = [r for r in after["charges"] if r[0] in old and r != old[r[0]]]
    assert any(r[4] and not old[r[0]][4] for r in changed_old), "a dispute on an old charge arrived"
    if any(start < t <= sandbox.clock for t in refund_times):  # refunds are rare in a small world
        assert any(r[2] > old[r[0]][2] for r in changed_old if r[0] in old), "a refund on an old charge arrived"
    assert all(r[2] == "paid" for r in after["payouts"] if r[0] in in_transit)
    assert len(after["charges"]) > len(before["charges"]) and len(after["disputes"]) > len(before["disputes"])

    jump(sandbox, sandbox.clock + timedelta(days=30))
    load(settings, running)
    assert resource_state(settings, "charges")["last_run"]["mode"] == "full"  # events cursor expired
    final = loaded(settings)
    assert final == truth(sandbox)
    status_then = {r[0]: r[3] for r in after["disputes"]}
    assert any(status_then.get(r[0]) not in (None, r[3]) for r in final["disputes"]), "a dispute moved on"

    # and back on the events path right after
    jump(sandbox, sandbox.clock + timedelta(days=3))
    load(settings, running)
    assert resource_state(settings, "disputes")["last_run"]["mode"] == "incremental"
    assert loaded(settings) == truth(sandbox)


def test_bad_records_are_quarantined_and_the_run_goes_on(settings, sandbox, start_emulator):
    """(f) A charge whose amount is not integer minor units and a balance transaction in an
    unknown currency are set aside with their reason; everything else loads."""
    running = start_emulator(StripeEmulator, sandbox, time_scale=settings.time_scale)
    expected = truth(sandbox)
    bad_charge = expected["charges"][3][0]
    bad_bt = expected["balance_transactions"][5][0]
    running.emulator.corruptions[bad_charge] = {"amount": "12.50"}
    running.emulator.corruptions[bad_bt] = {"currency": "xxx"}
    quarantine = Quarantine("stripe")
    result = load(settings, running, quarantine)
    reasons = {(r["entity"], r["record_id"]): r["reason"] for r in quarantine.rows}
    assert reasons[("charges", bad_charge)] == "amount='12.50' is not an integer amount in minor units"
    assert "currency='xxx'" in reasons[("balance_transactions", bad_bt)]
    assert result.quarantined == len(quarantine.rows) >= 2
    got = loaded(settings)
    assert [r[0] for r in got["charges"]] == [r[0] for r in expected["charges"] if r[0] != bad_charge]
    assert bad_bt not in {r[0] for r in got["balance_transactions"]}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        saved = con.execute("select entity, record_id, reason from ops.quarantine where platform = 'stripe'").fetchall()
    assert ("charges", bad_charge, reasons[("charges", bad_charge)]) in saved


def test_loading_one_table_leaves_the_other_cursors_alone(settings, sandbox, start_emulator):
    """Dagster may materialise a single raw table: payout_balance_transactions alone must not
    move the payouts cursor (it would if it were a dlt transformer of `payouts`)."""
    running = start_emulator(StripeEmulator, sandbox, time_scale=settings.time_scale)
    quarantine = Quarantine("stripe")
    conn = Connection("stripe", running.url, running.emulator.credentials(), settings)
    run_platform(settings, "stripe", stripe_source(conn, quarantine).with_resources("payout_balance_transactions"),
                 quarantine)
    resources = make_pipeline(settings, "stripe").state["sources"]["stripe"]["resources"]
    assert set(resources) == {"payout_balance_transactions"}
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
