"""The showroom POS channels (Square, Lightspeed) in the marts: the main job on a small world
equals the oracle to the cent for both, every Square payout ties to its entries, and a sync after
`sandbox advance` brings new sales, late returns, computed fees, landed payouts and edited tickets."""
from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import compare_with_oracle, pipeline_env, run_job

WORLD = 2_000
CHANNELS = {"square", "lightspeed"}


@pytest.fixture(scope="module")
def square_run(tmp_path_factory, small_world_dir) -> Path:
    data = tmp_path_factory.mktemp("square-run")
    shutil.copytree(small_world_dir / "sandbox", data / "sandbox")
    # hourly_sync = ingest + dbt + alerts: all the marts need (publishing is other tests' business)
    run_job(data, job="hourly_sync", sources=CHANNELS, size=WORLD, http_timeout_s=10)
    return data


def _q(warehouse: Path, sql: str, params=()):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_square_marts_equal_the_oracle(square_run):
    problems = compare_with_oracle(square_run / "warehouse.duckdb", Sandbox(square_run / "sandbox"), channels=CHANNELS)
    assert problems == {}
    (orders, refunds, cash, failed), = _q(square_run / "warehouse.duckdb", """
        select (select count(*) from marts.fct_orders where channel = 'square'),
               (select count(*) from marts.fct_refunds where channel = 'square'),
               (select count(*) from marts.fct_payments where channel = 'square' and processor = 'cash'),
               (select count(*) from marts.fct_payments where channel = 'square' and status <> 'succeeded')""")
    assert orders > 100 and refunds > 0 and cash > 0 and failed > 0


def test_every_square_payout_reconciles(square_run):
    rows = _q(square_run / "warehouse.duckdb", """
        select reconciliation_status, variance, fees from marts.rpt_payout_reconciliation where channel = 'square'""")
    assert rows and all(status == "matched" and variance == 0 for status, variance, _ in rows)
    assert sum(fees for *_, fees in rows) > 0


def test_summary_lists_the_channel(square_run):
    from finance_pipeline.cli import summary
    from finance_pipeline.settings import Settings

    with pipeline_env(square_run, size=WORLD):
        text = summary(Settings.from_env())
    assert "square" in text and "lightspeed" in text


def test_incremental_sync_after_advance(square_run, tmp_path):
    data = tmp_path / "incremental"
    shutil.copytree(square_run, data)
    sandbox = Sandbox(data / "sandbox")
    old = sandbox.clock
    sandbox.advance(hours=24 * 21)
    with sandbox.connect() as con:
        new_sales, late_returns, new_payouts = con.execute("""
            select (select count(*) from square_orders where kind = 'sale' and created_at > $o and created_at <= $n),
                   (select count(*) from square_refunds r join square_payments p using (payment_id)
                      where r.created_at > $o and r.created_at <= $n and p.created_at <= $o),
                   (select count(*) from square_payouts where created_at > $o and created_at <= $n)""",
                                                           {"o": old, "n": sandbox.clock}).fetchone()
    assert new_sales > 0 and late_returns > 0 and new_payouts > 0
    run_job(data, job="hourly_sync", sources=CHANNELS, size=WORLD, http_timeout_s=10)
    assert compare_with_oracle(data / "warehouse.duckdb", sandbox, channels=CHANNELS) == {}
    (raw_orders,), = _q(data / "warehouse.duckdb", "select count(*) from raw_square.orders where returns is null")
    (before,), = _q(square_run / "warehouse.duckdb", "select count(*) from raw_square.orders where returns is null")
    assert raw_orders == before + new_sales
    with sandbox.connect() as con:
        (ls_sales,) = con.execute("select count(*) from lightspeed_sales where created_at <= ?", [sandbox.clock]).fetchone()
        edited = dict(con.execute("""select sale_id, late_customer_id from lightspeed_sales
                                     where edited_at <= ? and created_at <= ?""", [sandbox.clock, old]).fetchall())
    (raw_ls,), = _q(data / "warehouse.duckdb", "select count(*) from raw_lightspeed.sales")
    assert raw_ls == ls_sales
    loaded = dict(_q(data / "warehouse.duckdb", "select id, customer_id from raw_lightspeed.sales"))
    assert edited and all(loaded[sale] == customer for sale, customer in edited.items())


def test_lightspeed_in_the_marts(square_run):
    (orders, void, refunds, cash, card), = _q(square_run / "warehouse.duckdb", """
        select (select count(*) from marts.fct_orders where channel = 'lightspeed'),
               (select count(*) from marts.fct_orders where channel = 'lightspeed' and is_void),
               (select count(*) from marts.fct_refunds where channel = 'lightspeed'),
               (select count(*) from marts.fct_payments where channel = 'lightspeed' and processor = 'cash'),
               (select count(*) from marts.fct_payments where channel = 'lightspeed' and processor = 'lightspeed_payments')""")
    assert orders > 50 and void > 0 and refunds > 0 and cash > 0 and card > 0


def test_no_request_went_over_the_limits(square_run):
    from finance_pipeline.sandbox import runtime
    from finance_pipeline.settings import Settings

    with pipeline_env(square_run, size=WORLD):
        settings = Settings.from_env()
    running = runtime.start_emulators(settings, names=["square", "lightspeed"])
    for name, r in running.items():
        assert r.emulator.counters["requests"] > 0, name
        assert r.emulator.counters["over_limit"] == 0, name
