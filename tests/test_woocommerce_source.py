"""Client + dlt source against the WooCommerce emulator, into a temporary DuckDB: loaded rows are
the world's visible truth; a re-run adds nothing; after `sandbox advance` an incremental run picks
up new orders, payments, edits and late refunds; 10 % injected faults change nothing; a bad
record is quarantined with its reason and the run goes on."""
from __future__ import annotations

from datetime import timedelta

from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.woocommerce.emulator import WooCommerceEmulator
from finance_pipeline.platforms.woocommerce.source import woocommerce_source
from finance_pipeline.sandbox.store import Sandbox
from source_helpers import (counts_as_of, edit_and_refund_after_clock, fresh, load_clean_and_faulty, load_source,
                            loaded_counts, no_duplicate_ids, query, raw_snapshot)

TABLES = ("orders", "refunds")


def load(settings, running, quarantine: Quarantine | None = None):
    return load_source(settings, "woocommerce", woocommerce_source, running, quarantine)


def truth(sandbox: Sandbox) -> dict:
    return counts_as_of(sandbox, {
        "orders": "select count(*) from woocommerce_orders where created_at <= $c",
        "refunds": "select count(*) from woocommerce_refunds where created_at <= $c",
        "paid": "select count(*) from woocommerce_orders where paid_at <= $c",
        "edited": "select count(*) from woocommerce_orders where edited_at <= $c",
    })


def loaded(settings) -> dict:
    return loaded_counts(settings, {
        "orders": "select count(*) from raw_woocommerce.orders",
        "refunds": "select count(*) from raw_woocommerce.refunds",
        "paid": "select count(*) from raw_woocommerce.orders where date_paid_gmt is not null",
        "edited": "select count(*) from raw_woocommerce.orders where customer_note <> ''",
    })


def snapshot(settings) -> dict:
    return raw_snapshot(settings, "raw_woocommerce", TABLES)


def test_full_load_rerun_and_incremental_after_advance(tmp_path, small_world_dir, start_emulator):
    settings, sandbox = fresh(tmp_path, small_world_dir)
    running = start_emulator(WooCommerceEmulator, sandbox, time_scale=30)
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    first = snapshot(settings)
    load(settings, running)  # nothing changed: the merge adds and changes nothing
    assert snapshot(settings) == first
    # orders placed after the clock, loaded, then edited / refunded later: each change picked up incrementally
    clock = sandbox.clock
    (t1, edit_at, edit_id, refund_at, order_id, refund_id) = edit_and_refund_after_clock(
        sandbox,
        "select created_at, edited_at, order_id from woocommerce_orders where created_at > ? "
        "and edited_at is not null order by created_at",
        """select o.created_at, r.created_at, r.order_id, r.refund_id from woocommerce_refunds r
           join woocommerce_orders o using (order_id) where o.created_at > ?
           order by o.created_at""",
        timedelta(hours=1))
    sandbox.advance((t1 - clock).total_seconds() / 3600 + 0.5)
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    assert query(settings, f"select customer_note from raw_woocommerce.orders where id = {edit_id}") == [("",)]
    assert query(settings, f"select count(*) from raw_woocommerce.refunds where parent_id = {order_id}") == [(0,)]
    refund_at = max(refund_at, edit_at)
    sandbox.advance((refund_at - sandbox.clock).total_seconds() / 3600 + 0.01)
    requests_before = running.emulator.counters["requests"]
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    assert query(settings, f"select parent_id from raw_woocommerce.refunds where id = {refund_id}") == [(order_id,)]
    (summary,) = query(settings, f"select refunds from raw_woocommerce.orders where id = {order_id}")
    assert str(refund_id) in summary[0]  # the parent order was re-read: its refunds summary moved
    assert query(settings, f"select customer_note <> '' from raw_woocommerce.orders where id = {edit_id}") == [(True,)]
    # incremental: far fewer requests than a full reload
    assert running.emulator.counters["requests"] - requests_before <= 6
    no_duplicate_ids(settings, "raw_woocommerce", TABLES)
    assert running.emulator.counters["over_limit"] == 0


def test_faults_change_nothing(tmp_path, small_world_dir, start_emulator):
    clean_settings, settings, running = load_clean_and_faulty(tmp_path, small_world_dir, start_emulator,
                                                              WooCommerceEmulator, load, fault_rate=0.10)
    assert snapshot(settings) == snapshot(clean_settings)
    assert running.emulator.counters["over_limit"] == 0


def test_faults_on_many_small_pages(tmp_path, small_world_dir, start_emulator, monkeypatch):
    from finance_pipeline.platforms.woocommerce import source as source_module

    monkeypatch.setattr(source_module, "PER_PAGE", 10)
    settings, sandbox = fresh(tmp_path, small_world_dir)
    running = start_emulator(WooCommerceEmulator, sandbox, time_scale=30, fault_rate=0.10, timeout_delay_s=1.5)
    load(settings, running)
    assert sum(running.emulator.faults.values()) > 0
    assert loaded(settings) == truth(sandbox)
    no_duplicate_ids(settings, "raw_woocommerce", TABLES)


def test_bad_record_is_quarantined_and_the_run_goes_on(tmp_path, small_world_dir, start_emulator, monkeypatch):
    settings, sandbox = fresh(tmp_path, small_world_dir)
    running = start_emulator(WooCommerceEmulator, sandbox, time_scale=30)
    original = running.emulator.render_orders
    victim = {}

    def corrupt(ids, clock=None, dp=2):
        orders = original(ids, clock, dp)
        for o in orders:
            if not victim and o["line_items"]:
                victim["id"] = o["id"]
            if o["id"] == victim.get("id"):
                o["total"] = "12,50"
        return orders

    monkeypatch.setattr(running.emulator, "render_orders", corrupt)
    quarantine = Quarantine("woocommerce")
    result = load(settings, running, quarantine)
    assert result.quarantined == 1
    (row,) = quarantine.rows
    assert row["entity"] == "orders" and row["record_id"] == str(victim["id"]) and "total" in row["reason"]
    assert loaded(settings)["orders"] == truth(sandbox)["orders"] - 1
    assert query(settings, "select reason from ops.quarantine where platform = 'woocommerce'") == [(row["reason"],)]
