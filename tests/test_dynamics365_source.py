"""Client + dlt source against the Business Central emulator, into a temporary DuckDB: loaded rows are
the company's visible truth; a re-run adds nothing; after `sandbox advance` an incremental run picks up
new invoices, payments and a cancellation; 10 % injected faults change nothing; a bad record is
quarantined with its reason and the run goes on."""
from __future__ import annotations

from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.dynamics365.emulator import DynamicsEmulator
from finance_pipeline.platforms.dynamics365.source import dynamics365_source
from finance_pipeline.sandbox.store import Sandbox
from source_helpers import (counts_as_of, fresh, load_clean_and_faulty, load_source, loaded_counts, no_duplicate_ids,
                            query, raw_snapshot)

TABLES = ("sales_invoices", "customer_payments", "customers", "currency_exchange_rates")


def load(settings, running, quarantine: Quarantine | None = None):
    return load_source(settings, "dynamics365", dynamics365_source, running, quarantine)


def truth(sandbox: Sandbox) -> dict:
    return counts_as_of(sandbox, {
        "invoices": "select count(*) from dynamics365_invoices where created_at <= $c",
        "payments": "select count(*) from dynamics365_payments where created_at <= $c",
        "cancelled": "select count(*) from dynamics365_invoices where canceled_at <= $c",
    })


def loaded(settings) -> dict:
    return loaded_counts(settings, {
        "invoices": "select count(*) from raw_dynamics365.sales_invoices",
        "payments": "select count(*) from raw_dynamics365.customer_payments",
        "cancelled": "select count(*) from raw_dynamics365.sales_invoices where status = 'Canceled'",
    })


def snapshot(settings) -> dict:
    return raw_snapshot(settings, "raw_dynamics365", TABLES)


def test_full_load_rerun_and_incremental_after_advance(tmp_path, small_world_dir, start_emulator):
    settings, sandbox = fresh(tmp_path, small_world_dir)
    running = start_emulator(DynamicsEmulator, sandbox, time_scale=30)
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    assert query(settings, "select count(*) from raw_dynamics365.customers")[0][0] >= 1
    first = snapshot(settings)
    load(settings, running)
    assert snapshot(settings) == first
    before = truth(sandbox)
    sandbox.advance(24 * 60)  # two months: new invoices, payments, cancellations
    after = truth(sandbox)
    assert after["invoices"] > before["invoices"] and after["payments"] > before["payments"]
    requests = running.emulator.counters["requests"]
    load(settings, running)
    assert loaded(settings) == after
    assert running.emulator.counters["requests"] - requests <= 12  # incremental: a page or so per entity
    no_duplicate_ids(settings, "raw_dynamics365", ("sales_invoices", "customer_payments"))
    assert running.emulator.counters["over_limit"] == 0


def test_faults_change_nothing(tmp_path, small_world_dir, start_emulator):
    clean_settings, settings, running = load_clean_and_faulty(tmp_path, small_world_dir, start_emulator,
                                                              DynamicsEmulator, load, fault_rate=0.15)
    assert sum(running.emulator.faults.values()) > 0
    assert snapshot(settings) == snapshot(clean_settings)
    assert running.emulator.counters["over_limit"] == 0


def test_bad_record_is_quarantined_and_the_run_goes_on(tmp_path, small_world_dir, start_emulator, monkeypatch):
    settings, sandbox = fresh(tmp_path, small_world_dir)
    running = start_emulator(DynamicsEmulator, sandbox, time_scale=30)
    original = running.emulator._invoices
    victim = {}

    def corrupt(clock, expand):
        invoices = original(clock, expand)
        victim.setdefault("id", invoices[3]["id"])
        for inv in invoices:
            if inv["id"] == victim["id"]:
                inv["totalAmountIncludingTax"] = "1.234,50"
        return invoices

    monkeypatch.setattr(running.emulator, "_invoices", corrupt)
    quarantine = Quarantine("dynamics365")
    result = load(settings, running, quarantine)
    assert result.quarantined == 1
    (row,) = quarantine.rows
    assert row["entity"] == "sales_invoices" and "totalAmountIncludingTax" in row["reason"]
    assert row["record_id"] == victim["id"]
    assert loaded(settings)["invoices"] == truth(sandbox)["invoices"] - 1
