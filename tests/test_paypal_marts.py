"""PayPal in the marts: the main job on a small world equals the oracle to the cent for the
channel, every withdrawal to the bank reconciles to the captures, refunds and fees before it, and a
sync after `sandbox advance` brings new captures, refunds and withdrawals."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import compare_with_oracle, pipeline_env, run_job

WORLD = 2_000


@pytest.fixture(scope="module")
def paypal_run(tmp_path_factory, small_world_dir) -> Path:
    data = tmp_path_factory.mktemp("paypal-run")
    shutil.copytree(small_world_dir / "sandbox", data / "sandbox")
    run_job(data, job="hourly_sync", sources={"paypal"}, size=WORLD)
    return data


def _q(warehouse: Path, sql: str):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


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
    from finance_pipeline.cli import summary
    from finance_pipeline.settings import Settings

    with pipeline_env(paypal_run, size=WORLD):
        settings = Settings.from_env()
        text = summary(settings)
        running = runtime.start_emulators(settings, names=["paypal"])
    assert "paypal" in text.lower()
    assert running["paypal"].emulator.counters["over_limit"] == 0


def test_incremental_sync_after_advance(paypal_run, tmp_path):
    data = tmp_path / "incremental"
    shutil.copytree(paypal_run, data)
    sandbox = Sandbox(data / "sandbox")
    old = sandbox.clock
    sandbox.advance(hours=24 * 21)
    with sandbox.connect() as con:
        new = con.execute("""select count(*) filter (where event_code = 'T0006'), count(*) filter (where event_code = 'T1107'),
                                    count(*) filter (where event_code = 'T0400')
                             from paypal_transactions where visible_at > $o and visible_at <= $n""",
                          {"o": old, "n": sandbox.clock}).fetchone()
    assert all(n > 0 for n in new)
    run_job(data, job="hourly_sync", sources={"paypal"}, size=WORLD)
    assert compare_with_oracle(data / "warehouse.duckdb", sandbox, channels={"paypal"}) == {}
