"""PayPal in the marts: the main job on a small world equals the oracle to the cent for the
channel, every withdrawal to the bank reconciles to the captures, refunds and fees before it, and a
sync after `sandbox advance` brings new captures, refunds and withdrawals."""
from __future__ import annotations

from pathlib import Path

import pytest

from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import (advanced_copy, channel_emulator, channel_run, compare_with_oracle, run_job,
                                    summary_text)
from tests.pipeline_helpers import warehouse_rows as _q

WORLD = 2_000


@pytest.fixture(scope="module")
def paypal_run(tmp_path_factory, small_world_dir) -> Path:
    return channel_run(tmp_path_factory, small_world_dir, {"paypal"}, size=WORLD)


def test_paypal_marts_equal_the_oracle(paypal_run):
    problems = compare_with_oracle(paypal_run / "warehouse.duckdb", Sandbox(paypal_run / "sandbox"), channels={"paypal"})
    assert problems == {}
    (orders, refunds, payments), = _q(paypal_run / "warehouse.duckdb", """
        select (select count(*) from marts.fct_orders where channel = 'paypal'),
               (select count(*) from marts.fct_refunds where channel = 'paypal'),
               (select count(*) from marts.fct_payments where channel = 'paypal')""")
    assert orders > 50 and refunds > 0 and payments == orders


def test_every_withdrawal_reconciles(paypal_run):
    rows = _q(paypal_run / "warehouse.duckdb", """
        select reconciliation_status, variance, fees, refunds_gross from marts.rpt_payout_reconciliation
        where channel = 'paypal'""")
    assert len(rows) > 10 and all(s == "matched" and v == 0 for s, v, *_ in rows)
    assert sum(f for _, _, f, _ in rows) > 0 and sum(r for *_, r in rows) < 0


def test_limits_honoured_and_summary_lists_paypal(paypal_run):
    assert "paypal" in summary_text(paypal_run, size=WORLD).lower()
    assert channel_emulator(paypal_run, "paypal", size=WORLD).counters["over_limit"] == 0


def test_incremental_sync_after_advance(paypal_run, tmp_path):
    data = tmp_path / "incremental"
    sandbox, old = advanced_copy(paypal_run, data, hours=24 * 21)
    with sandbox.connect() as con:
        new = con.execute("""select count(*) filter (where event_code = 'T0006'), count(*) filter (where event_code = 'T1107'),
                                    count(*) filter (where event_code = 'T0400')
                             from paypal_transactions where visible_at > $o and visible_at <= $n""",
                          {"o": old, "n": sandbox.clock}).fetchone()
    assert all(n > 0 for n in new)
    run_job(data, job="hourly_sync", sources={"paypal"}, size=WORLD)
    assert compare_with_oracle(data / "warehouse.duckdb", sandbox, channels={"paypal"}) == {}
