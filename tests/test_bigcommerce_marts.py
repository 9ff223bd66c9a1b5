"""The hourly job (every registered source, dbt, alerts) on a small world: the BigCommerce rows of
every mart — orders, lines, refunds, payments, GL, US state sales tax obligations, payment
status — equal the oracle to the cent; after `sandbox advance` an incremental run brings the new
orders, payments, edits and refunds and the marts still match; the store never refused a call."""
from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import channel_emulator, channel_run, compare_with_oracle, run_job, warehouse_rows


@pytest.fixture(scope="module")
def pipeline_run(small_world_dir, tmp_path_factory):
    yield channel_run(tmp_path_factory, small_world_dir, {"bigcommerce"})
    runtime.stop_emulators()


def _counts(warehouse):
    (counts,) = warehouse_rows(warehouse, """
        select (select count(*) from marts.fct_orders where channel = 'bigcommerce'),
               (select count(*) from marts.fct_refunds where channel = 'bigcommerce'),
               (select count(*) from marts.fct_payments where channel = 'bigcommerce' and status = 'failed'),
               (select count(distinct jurisdiction) from marts.fct_gl_entries
                  where channel = 'bigcommerce' and jurisdiction like 'US-%')""")
    return counts


def test_marts_equal_the_oracle_then_incremental_after_advance(pipeline_run):
    sandbox = Sandbox(pipeline_run / "sandbox")
    warehouse = pipeline_run / "warehouse.duckdb"
    assert compare_with_oracle(warehouse, sandbox, channels={"bigcommerce"}) == {}
    orders, refunds, failed, states = _counts(warehouse)
    assert orders > 100 and refunds > 5 and failed > 0 and states >= 5  # sales tax owed to each buyer's state
    sandbox.advance(24 * 40)
    run_job(pipeline_run, job="hourly_sync", sources={"bigcommerce"})
    assert compare_with_oracle(warehouse, sandbox, channels={"bigcommerce"}) == {}
    after = _counts(warehouse)
    assert after[0] > orders and after[1] >= refunds
    emulator = channel_emulator(pipeline_run, "bigcommerce")
    assert emulator.counters["requests"] > 0 and emulator.counters["over_limit"] == 0


def gl_differences(warehouse, sandbox, channel: str = "bigcommerce") -> list[str]:
    """The channel's general-ledger lines (compare_with_oracle leaves marts not keyed by channel out):
    every (entry, account) with its posting date, debit, credit and tax jurisdiction."""
    from finance_pipeline.sandbox import oracle as oracle_mod
    from tests.pipeline_helpers import mart_rows

    expected = {(str(k[0]), str(k[1])): v for k, v in oracle_mod.compute(sandbox).marts["fct_gl_entries"].items()
                if v["channel"] == channel}
    got = {k: v for k, v in mart_rows(warehouse, "fct_gl_entries").items() if v["channel"] == channel}
    problems = [f"missing {k}" for k in sorted(set(expected) - set(got))[:5]]
    problems += [f"unexpected {k}" for k in sorted(set(got) - set(expected))[:5]]
    for k in sorted(set(expected) & set(got)):
        for col in ("posted_on", "debit_home", "credit_home", "jurisdiction"):
            if expected[k][col] != got[k][col]:
                problems.append(f"{k} {col}: mart {got[k][col]!r} != oracle {expected[k][col]!r}")
    return problems


def test_ledger_and_state_sales_tax_equal_the_oracle(pipeline_run):
    sandbox = Sandbox(pipeline_run / "sandbox")
    warehouse = pipeline_run / "warehouse.duckdb"
    assert gl_differences(warehouse, sandbox) == []
    # sales tax owed per state (GL account 2220), from the world in Decimal: each order's line and
    # shipping tax (each converted on its own) of paid orders, less the tax of their refunds
    from collections import defaultdict

    from finance_pipeline.sandbox.world import q

    con = sandbox.connect()
    clock = sandbox.clock
    orders = {r[0]: r[1:] for r in con.execute(
        "select order_id, region, exchange_rate, shipping_tax from bigcommerce_orders where paid_at <= ?",
        [clock]).fetchall()}
    truth: dict[str, Decimal] = defaultdict(Decimal)
    for oid, (region, rate, shipping_tax) in orders.items():
        truth[f"US-{region}"] += q(shipping_tax / rate)
    for oid, tax in con.execute("select order_id, total_tax from bigcommerce_order_products").fetchall():
        if oid in orders:
            truth[f"US-{orders[oid][0]}"] += q(tax / orders[oid][1])
    for oid, tax in con.execute("select order_id, tax_amount from bigcommerce_refunds where created_at <= ?",
                                [clock]).fetchall():
        if oid in orders:
            truth[f"US-{orders[oid][0]}"] -= q(tax / orders[oid][1])
    con.close()
    truth = {k: v for k, v in truth.items() if v}
    con = duckdb.connect(str(warehouse), read_only=True)
    got = dict(con.execute("""select jurisdiction, sum(credit_home - debit_home) from marts.fct_gl_entries
                              where channel = 'bigcommerce' and account_code = '2220' group by 1""").fetchall())
    con.close()
    assert got == truth and len(got) >= 5
