"""The hourly job (every registered source, dbt, alerts) on a small world: the Sage Intacct rows of
every mart — invoices, AR detail, outstanding balances, GL (bank transfers straight to the bank,
realised FX), tax obligations, payment status — equal the oracle to the cent, and the gateway never
refused a call."""
from __future__ import annotations

import shutil

import duckdb

from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import compare_with_oracle, run_job


def test_sage_intacct_marts_equal_the_oracle(small_world_dir, tmp_path):
    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    try:
        run_job(tmp_path, job="hourly_sync", sources={"sage_intacct"})
        sandbox = Sandbox(tmp_path / "sandbox")
        warehouse = tmp_path / "warehouse.duckdb"
        assert compare_with_oracle(warehouse, sandbox, channels={"sage_intacct"}) == {}
        con = duckdb.connect(str(warehouse), read_only=True)
        invoices, void, statuses, paid, bank, fx = con.execute("""
            select (select count(*) from marts.fct_invoices where channel = 'sage_intacct'),
                   (select count(*) from marts.fct_invoices where channel = 'sage_intacct' and status = 'voided'),
                   (select count(distinct status) from marts.fct_invoices where channel = 'sage_intacct'),
                   (select count(*) from marts.fct_payments where channel = 'sage_intacct'),
                   (select count(*) from marts.fct_gl_entries where channel = 'sage_intacct' and account_code = '1100'),
                   (select count(*) from marts.fct_gl_entries where channel = 'sage_intacct' and account_code = '7100')
        """).fetchone()
        numbers = [r[0] for r in con.execute(
            "select invoice_number from marts.fct_invoices where channel = 'sage_intacct'").fetchall()]
        con.close()
        assert invoices >= 30 and void > 0 and statuses >= 3 and paid > 20 and bank > 20 and fx > 0
        assert all(n.startswith("INV-SI-") for n in numbers)
        emulator = runtime._running[(str(tmp_path), "sage_intacct")].emulator
        assert emulator.counters["requests"] > 0 and emulator.counters["over_limit"] == 0
    finally:
        runtime.stop_emulators()
