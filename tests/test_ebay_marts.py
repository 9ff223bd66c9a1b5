"""eBay in the marts: the main job on a small world equals the oracle to the cent for the channel,
every eBay payout reconciles to its Finances transactions, eBay-collected US sales tax stays apart
from tax the business owes, and a sync after `sandbox advance` brings new orders, late refunds and
payouts."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from finance_pipeline.platforms.ebay import oracle as ebay_oracle
from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import (advanced_copy, channel_emulator, channel_run, compare_with_oracle, run_job,
                                    summary_text)
from tests.pipeline_helpers import warehouse_rows as _q

WORLD = 2_000


@pytest.fixture(scope="module")
def ebay_run(tmp_path_factory, small_world_dir) -> Path:
    return channel_run(tmp_path_factory, small_world_dir, {"ebay"}, size=WORLD)


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
    assert "ebay" in summary_text(ebay_run, size=WORLD).lower()
    assert channel_emulator(ebay_run, "ebay", size=WORLD).counters["over_limit"] == 0


def test_incremental_sync_after_advance(ebay_run, tmp_path):
    data = tmp_path / "incremental"
    sandbox, old = advanced_copy(ebay_run, data, hours=24 * 30)
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
