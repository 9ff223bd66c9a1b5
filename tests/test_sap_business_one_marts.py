"""The hourly job (Shopify, Stripe and SAP Business One, dbt, alerts) on a small world: SAP Business One's rows of
every mart (orders, lines, payments, trade invoices, AR detail, outstanding balances, GL, tax
obligations, payment status) equal the oracle to the cent; after `sandbox advance` an incremental
run brings the new invoices, payments, edits and cancellations and the marts still match."""
from __future__ import annotations

import shutil

import duckdb
import pytest

from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import compare_with_oracle, run_job


# Shopify and Stripe (the core marts need them) and this channel: the comparison is per channel, and
# other channels' work in progress cannot break this test.
SOURCES = {"sources": {"shopify", "stripe", "sap_business_one"}}


@pytest.fixture(scope="module")
def pipeline_run(small_world_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("sb1-marts")
    shutil.copytree(small_world_dir / "sandbox", data / "sandbox")
    run_job(data, job="hourly_sync", **SOURCES)
    yield data
    runtime.stop_emulators()


def _counts(warehouse):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute("""select
            (select count(*) from marts.fct_invoices where channel = 'sap_business_one'),
            (select count(*) from marts.fct_invoices where channel = 'sap_business_one' and status = 'voided'),
            (select count(*) from marts.fct_invoices where channel = 'sap_business_one' and currency = 'AUD'),
            (select count(*) from marts.fct_payments where channel = 'sap_business_one'),
            (select count(*) from marts.fct_gl_entries where channel = 'sap_business_one' and account_code = '1100'),
            (select count(distinct status) from marts.fct_invoices where channel = 'sap_business_one')
        """).fetchone()
    finally:
        con.close()


def test_marts_equal_the_oracle_then_incremental_after_advance(pipeline_run):
    sandbox = Sandbox(pipeline_run / "sandbox")
    warehouse = pipeline_run / "warehouse.duckdb"
    assert compare_with_oracle(warehouse, sandbox, channels={"sap_business_one"}) == {}
    invoices, voided, aud, payments, bank, statuses = _counts(warehouse)
    assert invoices >= 30 and voided >= 1 and aud >= 1 and payments >= 20 and bank >= payments
    assert statuses >= 3  # paid, overdue / partially paid, voided …
    con = duckdb.connect(str(warehouse), read_only=True)
    numbers = [r[0] for r in con.execute("select invoice_number from marts.fct_invoices "
                                         "where channel = 'sap_business_one' limit 3").fetchall()]
    con.close()
    assert all(n.startswith("INV-SB1-") for n in numbers)
    sandbox.advance(24 * 40)
    run_job(pipeline_run, job="hourly_sync", **SOURCES)
    assert compare_with_oracle(warehouse, sandbox, channels={"sap_business_one"}) == {}
    after = _counts(warehouse)
    assert after[0] > invoices and after[3] > payments
    emulator = next(r.emulator for (d, name), r in runtime._running.items()
                    if name == "sap_business_one" and d == str(pipeline_run))
    assert emulator.counters["requests"] > 0 and emulator.counters["logins"] >= 1


def test_publish_the_real_marts_as_sales_orders(pipeline_run):
    """The publisher on the marts the pipeline built: every other channel's trade invoice becomes one
    sales order (Shopify's, with freight lines and UK VAT / zero-rated groups), none of the desk's own
    B1 invoices is written back, and the read-back equals the marts."""
    from conftest import make_settings
    from finance_pipeline.platforms.sap_business_one.publish import publish_orders

    settings = make_settings(pipeline_run)
    conn = runtime.connection(settings, "sap_business_one")
    first = publish_orders(settings, conn, settings.warehouse_path)
    assert first.ok and first.mismatches == [], first.summary()
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    others, own = con.execute("""select count(*) filter (where channel <> 'sap_business_one' and status <> 'voided'),
                                        count(*) filter (where channel = 'sap_business_one')
                                 from marts.fct_invoices""").fetchone()
    con.close()
    assert first.created == others > 10 and own > 0 and first.read_back == others
    again = publish_orders(settings, conn, settings.warehouse_path)
    assert again.ok and again.writes == 0
