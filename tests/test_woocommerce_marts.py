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



def test_tax_rounded_at_subtotal_goes_to_the_rounding_account(pipeline_run):
    """Scenario S13 on WooCommerce: an order whose cart tax the store rounded once (at subtotal
    level) owes that cart tax; what its lines' own rounded tax adds up to beyond it is in 7900
    Rounding differences on the order's entry, to the cent."""
    sandbox = Sandbox(pipeline_run / "sandbox")
    con = sandbox.connect()
    try:
        world = {str(r[0]): (r[1], r[2]) for r in con.execute("""
            select o.order_id, o.cart_tax_at_subtotal,
                   sum(round(l.total_tax * o.fx_rate, 2)) - round(o.cart_tax_at_subtotal * o.fx_rate, 2)
            from woocommerce_orders o join woocommerce_order_lines l using (order_id)
            where o.cart_tax_at_subtotal is not null and o.created_at <= ? and o.paid_at <= ?
            group by o.order_id, o.cart_tax_at_subtotal, o.fx_rate""", [sandbox.clock, sandbox.clock]).fetchall()}
    finally:
        con.close()
    assert len(world) >= 3, len(world)
    warehouse = pipeline_run / "warehouse.duckdb"
    orders = {r[0]: r[1] for r in warehouse_rows(warehouse, """
        select order_id, tax_rounding_amount_home from marts.fct_orders
        where channel = 'woocommerce' and not is_void and tax_rounding_amount <> 0""")}
    assert set(orders) == set(world)
    assert all(orders[oid] == home for oid, (_, home) in world.items())
    gl = dict(warehouse_rows(warehouse, """
        select source_id, sum(amount_home) from marts.fct_gl_entries
        where channel = 'woocommerce' and source_type = 'order' and account_code = '7900' group by 1"""))
    assert gl == {oid: -home for oid, (_, home) in world.items() if home != 0}
    # the order's tax line (cart tax) is what the mart owes, shipping tax apart
    tax = dict(warehouse_rows(warehouse, """
        select o.order_id, o.tax_amount - s.shipping_tax from marts.fct_orders o
        join staging.stg_woocommerce__orders s on cast(s.order_id as varchar) = o.order_id
        where o.channel = 'woocommerce' and o.tax_rounding_amount <> 0"""))
    assert tax == {oid: cart for oid, (cart, _) in world.items()}
