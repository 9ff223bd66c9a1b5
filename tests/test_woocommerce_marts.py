"""The hourly job (every registered source, dbt, alerts) on a small world: the WooCommerce rows of
every mart equal the oracle to the cent; after `sandbox advance` an incremental run brings the new
orders, payments, edits and refunds and the marts still match; the store's emulator never
refused a call."""
from __future__ import annotations

import pytest

from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import channel_emulator, channel_run, compare_with_oracle, run_job, warehouse_rows


@pytest.fixture(scope="module")
def pipeline_run(small_world_dir, tmp_path_factory):
    yield channel_run(tmp_path_factory, small_world_dir, {"woocommerce"})
    runtime.stop_emulators()


def _woocommerce_counts(warehouse):
    (counts,) = warehouse_rows(warehouse, """
        select (select count(*) from marts.fct_orders where channel = 'woocommerce'),
               (select count(*) from marts.fct_refunds where channel = 'woocommerce'),
               (select count(*) from marts.fct_payments where channel = 'woocommerce' and status = 'failed')""")
    return counts


def test_marts_equal_the_oracle_then_incremental_after_advance(pipeline_run):
    sandbox = Sandbox(pipeline_run / "sandbox")
    warehouse = pipeline_run / "warehouse.duckdb"
    assert compare_with_oracle(warehouse, sandbox, channels={"woocommerce"}) == {}
    orders, refunds, failed = _woocommerce_counts(warehouse)
    assert orders > 100 and refunds > 5 and failed > 0
    sandbox.advance(24 * 40)
    run_job(pipeline_run, job="hourly_sync", sources={"woocommerce"})
    assert compare_with_oracle(warehouse, sandbox, channels={"woocommerce"}) == {}
    after = _woocommerce_counts(warehouse)
    assert after[0] > orders and after[1] >= refunds
    emulator = channel_emulator(pipeline_run, "woocommerce")
    assert emulator.counters["requests"] > 0 and emulator.counters["over_limit"] == 0

