"""eBay in the marts: the main job on a small world equals the oracle to the cent for the channel,
every eBay payout reconciles to its Finances transactions, eBay-collected US sales tax stays apart
from tax the business owes, and a sync after `sandbox advance` brings new orders, late refunds and
payouts."""
from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finance_pipeline.platforms.ebay import oracle as ebay_oracle
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import compare_with_oracle, pipeline_env, run_job

WORLD = 2_000


@pytest.fixture(scope="module")
def ebay_run(tmp_path_factory, small_world_dir) -> Path:
    data = tmp_path_factory.mktemp("ebay-run")
    shutil.copytree(small_world_dir / "sandbox", data / "sandbox")
    run_job(data, job="hourly_sync", sources={"ebay"}, size=WORLD)
    return data


def _q(warehouse: Path, sql: str, params=()):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_ebay_marts_equal_the_oracle(ebay_run):
    problems = compare_with_oracle(ebay_run / "warehouse.duckdb", Sandbox(ebay_run / "sandbox"), channels={"ebay"})
    assert problems == {}
    (orders, us, refunds, payments), = _q(ebay_run / "warehouse.duckdb", """
        select (select count(*) from marts.fct_orders where channel = 'ebay'),
               (select count(*) from marts.fct_orders where channel = 'ebay' and currency = 'USD'),
               (select count(*) from marts.fct_refunds where channel = 'ebay'),
               (select count(*) from marts.fct_payments where channel = 'ebay')""")
    assert orders > 100 and us > 20 and refunds > 5 and payments == orders


def test_every_ebay_payout_reconciles(ebay_run):
    rows = _q(ebay_run / "warehouse.duckdb", """
        select reconciliation_status, variance, fees, adjustments from marts.rpt_payout_reconciliation
        where channel = 'ebay'""")
    assert len(rows) > 100
    assert all(status == "matched" and variance == 0 for status, variance, *_ in rows)
    assert sum(fees for _, _, fees, _ in rows) > 0


def test_marketplace_tax_is_kept_apart(ebay_run):
    """US orders: all the tax the buyer paid is eBay's to remit; UK orders: VAT owed, none eBay's."""
    sandbox = Sandbox(ebay_run / "sandbox")
    rows = dict(((ccy, (tax, mtax)) for ccy, tax, mtax in _q(ebay_run / "warehouse.duckdb", """
        select currency, sum(tax_amount), sum(marketplace_tax_amount) from intermediate.int_order_lines
        where channel = 'ebay' group by currency""")))
    us_tax, us_marketplace = rows["USD"]
    gb_tax, gb_marketplace = rows["GBP"]
    assert us_tax == us_marketplace > 0
    assert gb_tax > 0 and gb_marketplace == 0
    with sandbox.connect() as con:
        net = ebay_oracle.marketplace_tax(con, sandbox.clock)
    (refunded,), = _q(ebay_run / "warehouse.duckdb", """
        select sum(marketplace_tax_amount) from intermediate.int_refunds
        where channel = 'ebay' and currency = 'USD'""")
    assert us_marketplace - refunded == net["USD"]
    assert net.get("GBP", Decimal(0)) == 0


def test_limits_honoured_and_summary_lists_ebay(ebay_run):
    from finance_pipeline.cli import summary
    from finance_pipeline.settings import Settings

    with pipeline_env(ebay_run, size=WORLD):
        settings = Settings.from_env()
        text = summary(settings)
        running = runtime.start_emulators(settings, names=["ebay"])
    assert "ebay" in text.lower()
    assert running["ebay"].emulator.counters["over_limit"] == 0


def test_incremental_sync_after_advance(ebay_run, tmp_path):
    data = tmp_path / "incremental"
    shutil.copytree(ebay_run, data)
    sandbox = Sandbox(data / "sandbox")
    old = sandbox.clock
    sandbox.advance(hours=24 * 30)
    with sandbox.connect() as con:
        new_orders, late_refunds, new_payouts = con.execute("""
            select (select count(*) from ebay_orders where created_at > $o and created_at <= $n),
                   (select count(*) from ebay_refunds r join ebay_orders o using (order_id)
                      where r.created_at > $o and r.created_at <= $n and o.created_at <= $o),
                   (select count(*) from ebay_payouts where payout_at > $o and payout_at <= $n)""",
                                                            {"o": old, "n": sandbox.clock}).fetchone()
    assert new_orders > 0 and late_refunds > 0 and new_payouts > 0
    run_job(data, job="hourly_sync", sources={"ebay"}, size=WORLD)
    assert compare_with_oracle(data / "warehouse.duckdb", sandbox, channels={"ebay"}) == {}
    (raw_orders,), = _q(data / "warehouse.duckdb", "select count(*) from raw_ebay.orders")
    (before,), = _q(ebay_run / "warehouse.duckdb", "select count(*) from raw_ebay.orders")
    assert raw_orders == before + new_orders
