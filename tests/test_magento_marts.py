"""The hourly job (every registered source, dbt, alerts) on a small world: the Magento rows of every
mart equal the oracle to the cent, and the store's emulator never refused a call."""
from __future__ import annotations

import shutil

import duckdb

from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import compare_with_oracle, run_job


def test_magento_marts_equal_the_oracle(small_world_dir, tmp_path):
    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    try:
        run_job(tmp_path, job="hourly_sync", sources={"magento"})
        sandbox = Sandbox(tmp_path / "sandbox")
        warehouse = tmp_path / "warehouse.duckdb"
        assert compare_with_oracle(warehouse, sandbox, channels={"magento"}) == {}
        con = duckdb.connect(str(warehouse), read_only=True)
        orders, memos, void = con.execute("""
            select (select count(*) from marts.fct_orders where channel = 'magento'),
                   (select count(*) from marts.fct_refunds where channel = 'magento'),
                   (select count(*) from marts.fct_orders where channel = 'magento' and is_void)""").fetchone()
        con.close()
        assert orders > 100 and memos > 5 and void > 0
        emulator = runtime._running[(str(tmp_path), "magento")].emulator
        assert emulator.counters["requests"] > 0 and emulator.counters["over_limit"] == 0
    finally:
        runtime.stop_emulators()
