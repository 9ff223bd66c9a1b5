"""Client + dlt source against the BigCommerce emulator, into a temporary DuckDB: loaded rows are the
world's visible truth (orders, their products and transactions, refunds); a re-run changes nothing;
after `sandbox advance` an incremental run picks up new orders, payments, edits and late refunds
with few requests; 10 % injected faults change nothing; a bad record is quarantined with its reason
and the run goes on."""
from __future__ import annotations

from datetime import timedelta

from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.bigcommerce.emulator import BigCommerceEmulator
from finance_pipeline.platforms.bigcommerce.source import bigcommerce_source
from finance_pipeline.sandbox.store import Sandbox
from source_helpers import (counts_as_of, edit_and_refund_after_clock, fresh, load_clean_and_faulty, load_source,
                            loaded_counts, no_duplicate_ids, query, raw_snapshot)

TABLES = ("orders", "order_products", "transactions", "refunds")


def load(settings, running, quarantine: Quarantine | None = None):
    return load_source(settings, "bigcommerce", bigcommerce_source, running, quarantine)


def truth(sandbox: Sandbox) -> dict:
    return counts_as_of(sandbox, {
        "orders": "select count(*) from bigcommerce_orders where created_at <= $c",
        "products": "select count(*) from bigcommerce_order_products p join bigcommerce_orders o "
                    "using (order_id) where o.created_at <= $c",
        "transactions": "select count(*) from bigcommerce_transactions where created_at <= $c",
        "refunds": "select count(*) from bigcommerce_refunds where created_at <= $c",
        "paid": "select count(*) from bigcommerce_orders where paid_at <= $c",
        "edited": "select count(*) from bigcommerce_orders where edited_at <= $c",
    })


def loaded(settings) -> dict:
    return loaded_counts(settings, {
        "orders": "select count(*) from raw_bigcommerce.orders",
        "products": "select count(*) from raw_bigcommerce.order_products",
        "transactions": "select count(*) from raw_bigcommerce.transactions",
        "refunds": "select count(*) from raw_bigcommerce.refunds",
        "paid": "select count(*) from raw_bigcommerce.orders where payment_status in "
                "('captured', 'partially refunded', 'refunded')",
        "edited": "select count(*) from raw_bigcommerce.orders where staff_notes <> ''",
    })


def snapshot(settings) -> dict:
    return raw_snapshot(settings, "raw_bigcommerce", TABLES)


def test_full_load_rerun_and_incremental_after_advance(tmp_path, small_world_dir, start_emulator):
    settings, sandbox = fresh(tmp_path, small_world_dir)
    running = start_emulator(BigCommerceEmulator, sandbox, time_scale=30)
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    first = snapshot(settings)
    load(settings, running)  # nothing changed: the merge adds and changes nothing
    assert snapshot(settings) == first
    # orders placed after the clock, loaded, then edited / refunded later: each change picked up incrementally
    clock = sandbox.clock
    (t1, edit_at, edit_id, refund_at, order_id, refund_id) = edit_and_refund_after_clock(
        sandbox,
        "select created_at, edited_at, order_id from bigcommerce_orders where created_at > ? "
        "and edited_at is not null order by created_at",
        """select o.created_at, r.created_at, r.order_id, r.refund_id from bigcommerce_refunds r
           join bigcommerce_orders o using (order_id) where o.created_at > ?
           and r.created_at > o.shipped_at order by o.created_at""",
        timedelta(hours=100))
    sandbox.advance((t1 - clock).total_seconds() / 3600 + 99)
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    assert query(settings, f"select staff_notes from raw_bigcommerce.orders where id = {edit_id}") == [("",)]
    assert query(settings, f"select count(*) from raw_bigcommerce.refunds where order_id = {order_id}") == [(0,)]
    sandbox.advance((max(refund_at, edit_at) - sandbox.clock).total_seconds() / 3600 + 0.01)
    requests_before = running.emulator.counters["requests"]
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    assert query(settings, f"select order_id from raw_bigcommerce.refunds where id = {refund_id}") == [(order_id,)]
    (status, refunded_amount), = query(
        settings, f"select status_id, refunded_amount from raw_bigcommerce.orders where id = {order_id}")
    assert status in (4, 14) and refunded_amount != "0.0000"  # the order was re-read: its status moved
    assert query(settings, f"select staff_notes <> '' from raw_bigcommerce.orders where id = {edit_id}") == [(True,)]
    assert query(settings, f"select count(*) from raw_bigcommerce.transactions where order_id = {order_id} "
                           "and event = 'refund'") >= [(1,)]
    # incremental: a handful of requests (orders and refunds pages + products and transactions per changed order)
    assert running.emulator.counters["requests"] - requests_before <= 30
    no_duplicate_ids(settings, "raw_bigcommerce", TABLES)
    assert running.emulator.counters["over_limit"] == 0


def test_faults_change_nothing(tmp_path, small_world_dir, start_emulator):
    clean_settings, settings, running = load_clean_and_faulty(tmp_path, small_world_dir, start_emulator,
                                                              BigCommerceEmulator, load, fault_rate=0.10)
    assert sum(running.emulator.faults.values()) > 0
    assert snapshot(settings) == snapshot(clean_settings)
    assert running.emulator.counters["over_limit"] == 0


def test_bad_record_is_quarantined_and_the_run_goes_on(tmp_path, small_world_dir, start_emulator, monkeypatch):
    settings, sandbox = fresh(tmp_path, small_world_dir)
    running = start_emulator(BigCommerceEmulator, sandbox, time_scale=30)
    original = running.emulator.render_orders
    victim = {}

    def corrupt(ids):
        orders = original(ids)
        for o in orders:
            victim.setdefault("id", o["id"])
            if o["id"] == victim["id"]:
                o["total_inc_tax"] = "12,5000"
        return orders

    monkeypatch.setattr(running.emulator, "render_orders", corrupt)
    quarantine = Quarantine("bigcommerce")
    result = load(settings, running, quarantine)
    assert result.quarantined == 1
    (row,) = quarantine.rows
    assert row["entity"] == "orders" and row["record_id"] == str(victim["id"]) and "total_inc_tax" in row["reason"]
    assert loaded(settings)["orders"] == truth(sandbox)["orders"] - 1
    assert query(settings, "select reason from ops.quarantine where platform = 'bigcommerce'") == [(row["reason"],)]
