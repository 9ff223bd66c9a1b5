"""The hourly job (every registered source, dbt, alerts) on a small world: the Business Central rows of
every mart — trade invoices, AR detail, outstanding balances, GL, tax obligations, payment status — equal
the oracle to the cent, and the emulator never refused a call."""
from __future__ import annotations

import shutil

import duckdb

from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import compare_with_oracle, run_job


def test_dynamics365_marts_equal_the_oracle(small_world_dir, tmp_path):
    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    try:
        run_job(tmp_path, job="hourly_sync", sources={"dynamics365"})
        sandbox = Sandbox(tmp_path / "sandbox")
        warehouse = tmp_path / "warehouse.duckdb"
        assert compare_with_oracle(warehouse, sandbox, channels={"dynamics365"}) == {}
        con = duckdb.connect(str(warehouse), read_only=True)
        invoices, void, paid, fx, bank = con.execute("""
            select (select count(*) from marts.fct_invoices where channel = 'dynamics365'),
                   (select count(*) from marts.fct_invoices where channel = 'dynamics365' and status = 'voided'),
                   (select count(*) from marts.fct_invoices where channel = 'dynamics365' and status = 'paid'),
                   (select count(*) from marts.fct_gl_entries where channel = 'dynamics365' and account_code = '7100'),
                   (select count(*) from marts.fct_gl_entries where channel = 'dynamics365' and account_code = '1100')
        """).fetchone()
        statuses = {r[0] for r in con.execute(
            "select distinct status from marts.fct_invoices where channel = 'dynamics365'").fetchall()}
        con.close()
        assert invoices >= 30 and void >= 1 and paid >= 10, (invoices, void, paid)
        assert {"paid", "overdue"} <= statuses, statuses
        assert fx > 0 and bank > 0  # bank transfers straight to the bank; realised FX on USD invoices
        emulator = runtime._running[(str(tmp_path), "dynamics365")].emulator
        assert emulator.counters["requests"] > 0 and emulator.counters["over_limit"] == 0
    finally:
        runtime.stop_emulators()
