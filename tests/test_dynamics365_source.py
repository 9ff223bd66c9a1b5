"""Client + dlt source against the Business Central emulator, into a temporary DuckDB: loaded rows are
the company's visible truth; a re-run adds nothing; after `sandbox advance` an incremental run picks up
new invoices, payments and a cancellation; 10 % injected faults change nothing; a bad record is
quarantined with its reason and the run goes on."""
from __future__ import annotations

import shutil

import duckdb

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.dynamics365.emulator import DynamicsEmulator
from finance_pipeline.platforms.dynamics365.source import dynamics365_source
from finance_pipeline.sandbox.store import Sandbox
from tests.conftest import make_settings

TABLES = ("sales_invoices", "customer_payments", "customers", "currency_exchange_rates")


def load(settings, running, quarantine: Quarantine | None = None):
    quarantine = quarantine if quarantine is not None else Quarantine("dynamics365")
    connection = Connection("dynamics365", running.url, running.emulator.credentials(), settings)
    return run_platform(settings, "dynamics365", dynamics365_source(connection, quarantine), quarantine)


def query(settings, sql: str):
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def truth(sandbox: Sandbox) -> dict:
    con = sandbox.connect()
    try:
        c = {"c": sandbox.clock}
        return {
            "invoices": con.execute("select count(*) from dynamics365_invoices where created_at <= $c", c).fetchone()[0],
            "payments": con.execute("select count(*) from dynamics365_payments where created_at <= $c", c).fetchone()[0],
            "cancelled": con.execute("select count(*) from dynamics365_invoices where canceled_at <= $c", c).fetchone()[0],
        }
    finally:
        con.close()


def loaded(settings) -> dict:
    (row,) = query(settings, """select (select count(*) from raw_dynamics365.sales_invoices),
                                       (select count(*) from raw_dynamics365.customer_payments),
                                       (select count(*) from raw_dynamics365.sales_invoices where status = 'Canceled')""")
    return dict(zip(("invoices", "payments", "cancelled"), row))


def snapshot(settings) -> dict:
    return {t: sorted(query(settings, f"select * from raw_dynamics365.{t}"), key=str)
            for t in TABLES}


def fresh(tmp_path, small_world_dir):
    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    settings = make_settings(tmp_path)
    return settings, Sandbox(settings.sandbox_dir)


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
    for t, key in (("sales_invoices", "id"), ("customer_payments", "id")):
        assert query(settings, f"select count(*) - count(distinct {key}) from raw_dynamics365.{t}") == [(0,)]
    assert running.emulator.counters["over_limit"] == 0


def test_faults_change_nothing(tmp_path, small_world_dir, start_emulator):
    clean_settings, clean_sandbox = fresh(tmp_path / "clean", small_world_dir)
    load(clean_settings, start_emulator(DynamicsEmulator, clean_sandbox, time_scale=30))
    settings, sandbox = fresh(tmp_path / "faulty", small_world_dir)
    running = start_emulator(DynamicsEmulator, sandbox, time_scale=30, fault_rate=0.15, timeout_delay_s=1.5)
    load(settings, running)
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
