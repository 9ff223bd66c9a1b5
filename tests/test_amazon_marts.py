"""Amazon in the marts: the main job on a small world equals the oracle to the cent for the
channel, every settlement ties to its financial events, marketplace-facilitator tax is kept
apart, no request went over Amazon's per-operation limits, and a sync after `sandbox advance`
brings new orders, late refunds and newly closed settlements."""
from __future__ import annotations

from pathlib import Path

import pytest

from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import (advanced_copy, channel_emulator, channel_run, compare_with_oracle, run_job,
                                    summary_text)
from tests.pipeline_helpers import warehouse_rows as _q

WORLD = 2_000


@pytest.fixture(scope="module")
def amazon_run(tmp_path_factory, small_world_dir) -> Path:
    return channel_run(tmp_path_factory, small_world_dir, {"amazon"}, job="daily_close", size=WORLD,
                       FINANCE_DESTINATIONS="none")


def amazon_problems(warehouse: Path, sandbox: Sandbox) -> dict[str, list[str]]:
    return compare_with_oracle(warehouse, sandbox, channels={"amazon"})


def test_amazon_marts_equal_the_oracle(amazon_run):
    assert amazon_problems(amazon_run / "warehouse.duckdb", Sandbox(amazon_run / "sandbox")) == {}
    (orders, refunds, usd, payouts, fees), = _q(amazon_run / "warehouse.duckdb", """
        select (select count(*) from marts.fct_orders where channel = 'amazon'),
               (select count(*) from marts.fct_refunds where channel = 'amazon'),
               (select count(*) from marts.fct_orders where channel = 'amazon' and currency = 'USD'),
               (select count(*) from marts.fct_payouts where channel = 'amazon'),
               (select sum(fees) from marts.rpt_profit_and_loss where channel = 'amazon')""")
    assert orders > 200 and refunds > 10 and usd > 50 and payouts > 40 and fees > 0


def test_every_amazon_settlement_reconciles(amazon_run):
    rows = _q(amazon_run / "warehouse.duckdb", """
        select payout_id, reconciliation_status, variance, fees, currency
        from marts.rpt_payout_reconciliation where channel = 'amazon'""")
    assert rows and all(status == "matched" and variance == 0 for _, status, variance, _, _ in rows), rows
    assert {r[4] for r in rows} == {"GBP", "USD"}
    assert sum(r[3] for r in rows) > 0


def test_marketplace_facilitator_tax_is_separate(amazon_run):
    (us_tax, us_mf, uk_tax, uk_mf, withheld), = _q(amazon_run / "warehouse.duckdb", """
        select sum(tax_amount) filter (where currency = 'USD'),
               sum(marketplace_tax_amount) filter (where currency = 'USD'),
               sum(tax_amount) filter (where currency = 'GBP'),
               sum(marketplace_tax_amount) filter (where currency = 'GBP'),
               (select -sum(net) from intermediate.int_amazon__balance_transactions
                 where category = 'MarketplaceFacilitatorTax-Principal' and type = 'charge')
        from intermediate.int_amazon__orders o
        join (select order_id, sum(tax_amount) as tax_amount from intermediate.int_amazon__order_lines group by 1)
            using (order_id)
        where not is_void""")
    # US sales tax is all collected and remitted by Amazon; UK VAT is the business's to pay
    assert us_tax > 0 and us_mf == us_tax and uk_tax > 0 and uk_mf == 0
    # what Amazon withheld from the shipments equals the tax of the shipped US orders
    assert 0 < withheld <= us_mf
    # and the tax report shows it as collected by the marketplace, not owed by the business
    (mf_home,), = _q(amazon_run / "warehouse.duckdb", """
        select sum(marketplace_collected_tax_home) from marts.rpt_tax_obligations where jurisdiction like 'US-%'""")
    (amazon_mf_home,), = _q(amazon_run / "warehouse.duckdb", """
        select sum(l.marketplace_tax_amount_home) - coalesce((select sum(marketplace_tax_amount_home)
                                                           from intermediate.int_amazon__refunds), 0)
        from intermediate.int_amazon__order_lines l join intermediate.int_amazon__orders o using (order_id)
        where not o.is_void""")
    assert mf_home >= amazon_mf_home > 0  # other marketplaces (eBay) may add theirs


def test_limits_honoured_and_summary_lists_amazon(amazon_run):
    assert "amazon" in summary_text(amazon_run, size=WORLD).lower()
    emulator = channel_emulator(amazon_run, "amazon", size=WORLD)
    assert emulator.counters["requests"] > 0
    assert emulator.counters["over_limit"] == 0


def test_incremental_sync_after_advance(amazon_run, tmp_path):
    data = tmp_path / "incremental"
    sandbox, old = advanced_copy(amazon_run, data, hours=24 * 21)
    with sandbox.connect() as con:
        new_orders, late_refunds, closed = con.execute("""
            select (select count(*) from amazon_orders where purchase_at > $o and purchase_at <= $n),
                   (select count(*) from amazon_refunds r join amazon_orders o using (order_id)
                      where r.posted_at > $o and r.posted_at <= $n and o.purchase_at <= $o),
                   (select count(*) from amazon_event_groups where end_at > $o and end_at <= $n)""",
                                                       {"o": old, "n": sandbox.clock}).fetchone()
    assert new_orders > 0 and late_refunds > 0 and closed > 0
    run_job(data, job="hourly_sync", sources={"amazon"}, size=WORLD, FINANCE_DESTINATIONS="none")
    assert amazon_problems(data / "warehouse.duckdb", sandbox) == {}
    (raw_orders,), = _q(data / "warehouse.duckdb", "select count(*) from raw_amazon.orders")
    (before,), = _q(amazon_run / "warehouse.duckdb", "select count(*) from raw_amazon.orders")
    assert raw_orders >= before + new_orders - 2  # orders of the last two minutes are not served yet
