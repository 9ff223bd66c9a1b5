"""Client + dlt source against the Magento emulator, into a temporary DuckDB: loaded rows are the
world's visible truth; a re-run adds nothing; after `sandbox advance` an incremental run picks up
new orders, payments, credit memos and edits; 10 % injected faults change nothing; a bad record is
quarantined with its reason and the run goes on."""
from __future__ import annotations

from datetime import timedelta

from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.magento.emulator import MagentoEmulator
from finance_pipeline.platforms.magento.source import magento_source
from finance_pipeline.sandbox.store import Sandbox
from source_helpers import (counts_as_of, edit_and_refund_after_clock, fresh, load_clean_and_faulty, load_source,
                            loaded_counts, no_duplicate_ids, query, raw_snapshot)

TABLES = ("orders", "creditmemos")


def load(settings, running, quarantine: Quarantine | None = None):
    return load_source(settings, "magento", magento_source, running, quarantine)


def truth(sandbox: Sandbox) -> dict:
    return counts_as_of(sandbox, {
        "orders": "select count(*) from magento_orders where created_at <= $c",
        "memos": "select count(*) from magento_creditmemos where created_at <= $c",
        "paid": "select count(*) from magento_orders where paid_at <= $c",
    })


def loaded(settings) -> dict:
    return loaded_counts(settings, {
        "orders": "select count(*) from raw_magento.orders",
        "memos": "select count(*) from raw_magento.creditmemos",
        "paid": "select count(*) from raw_magento.orders where cast(total_paid as decimal(18,2)) > 0",
    })


def snapshot(settings) -> dict:
    return raw_snapshot(settings, "raw_magento", TABLES)


def no_duplicates(settings) -> None:
    no_duplicate_ids(settings, "raw_magento", TABLES, key="entity_id")


def test_full_load_rerun_and_incremental_after_advance(tmp_path, small_world_dir, start_emulator):
    settings, sandbox = fresh(tmp_path, small_world_dir)
    running = start_emulator(MagentoEmulator, sandbox, time_scale=30)
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    first = snapshot(settings)
    load(settings, running)
    assert snapshot(settings) == first
    clock = sandbox.clock
    t1, edit_at, edit_id, memo_at, order_id, memo_id = edit_and_refund_after_clock(
        sandbox,
        "select created_at, edited_at, entity_id from magento_orders where created_at > ? "
        "and edited_at is not null order by created_at",
        """select o.created_at, c.created_at, c.order_id, c.entity_id from magento_creditmemos c
           join magento_orders o on o.entity_id = c.order_id where o.created_at > ?
           order by o.created_at""",
        timedelta(hours=1))
    sandbox.advance((t1 - clock).total_seconds() / 3600 + 0.5)
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    assert query(settings, f"select status_histories from raw_magento.orders where entity_id = {edit_id}") == [("[]",)]
    sandbox.advance((max(edit_at, memo_at) - sandbox.clock).total_seconds() / 3600 + 0.01)
    before = running.emulator.counters["requests"]
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    assert query(settings, f"select order_id from raw_magento.creditmemos where entity_id = {memo_id}") == [(order_id,)]
    (refunded,) = query(settings, f"select cast(total_refunded as decimal(18,2)) from raw_magento.orders "
                                  f"where entity_id = {order_id}")
    assert refunded[0] > 0  # the parent order was re-read after its credit memo
    (hist,) = query(settings, f"select status_histories from raw_magento.orders where entity_id = {edit_id}")
    assert "corrected" in hist[0]
    assert running.emulator.counters["requests"] - before <= 6
    no_duplicates(settings)
    assert running.emulator.counters["over_limit"] == 0


def test_faults_change_nothing(tmp_path, small_world_dir, start_emulator, monkeypatch):
    from finance_pipeline.platforms.magento import source as source_module

    clean_settings, settings, running = load_clean_and_faulty(
        tmp_path, small_world_dir, start_emulator, MagentoEmulator, load, fault_rate=0.10,
        # many pages for the faulty run, so the faults hit many requests
        before_faulty=lambda: monkeypatch.setattr(source_module, "PAGE_SIZE", 10))
    assert sum(running.emulator.faults.values()) > 0
    assert snapshot(settings) == snapshot(clean_settings)
    no_duplicates(settings)
    assert running.emulator.counters["over_limit"] == 0


def test_bad_record_is_quarantined_and_the_run_goes_on(tmp_path, small_world_dir, start_emulator, monkeypatch):
    settings, sandbox = fresh(tmp_path, small_world_dir)
    running = start_emulator(MagentoEmulator, sandbox, time_scale=30)
    original = running.emulator.render_orders
    victim = {}

    def corrupt(ids, clock=None):
        orders = original(ids, clock)
        for o in orders:
            victim.setdefault("id", o["entity_id"])
            if o["entity_id"] == victim["id"]:
                o["grand_total"] = "12,50"
        return orders

    monkeypatch.setattr(running.emulator, "render_orders", corrupt)
    quarantine = Quarantine("magento")
    result = load(settings, running, quarantine)
    assert result.quarantined == 1
    (row,) = quarantine.rows
    assert row["entity"] == "orders" and "grand_total" in row["reason"] and row["record_id"] == str(victim["id"])
    assert loaded(settings)["orders"] == truth(sandbox)["orders"] - 1
