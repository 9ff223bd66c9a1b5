"""Client + dlt source against the FreshBooks emulator, into a temporary DuckDB: loaded rows are the
world's visible truth (deleted invoices included, read with vis_state 1); a re-run changes nothing;
after `sandbox advance` an incremental run (Eastern `search[updated_min]`) picks up new invoices,
payments, voids and edits with few requests; 10 % injected faults change nothing; many small pages
are walked to the envelope's `pages`; a bad record is quarantined with its reason and the run goes on."""
from __future__ import annotations

import shutil
from datetime import timedelta

import duckdb
import pytest

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.freshbooks.client import to_eastern
from finance_pipeline.platforms.freshbooks.emulator import FreshBooksEmulator
from finance_pipeline.platforms.freshbooks.source import freshbooks_source
from finance_pipeline.sandbox.store import Sandbox
from tests.conftest import make_settings


def load(settings, running, quarantine: Quarantine | None = None):
    quarantine = quarantine if quarantine is not None else Quarantine("freshbooks")
    connection = Connection("freshbooks", running.url, running.emulator.credentials(), settings)
    return run_platform(settings, "freshbooks", freshbooks_source(connection, quarantine), quarantine)


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
        one = lambda sql: con.execute(sql, c).fetchone()[0]  # noqa: E731
        return {"invoices": one("select count(*) from freshbooks_invoices where created_at <= $c"),
                "deleted": one("select count(*) from freshbooks_invoices where voided_at <= $c"),
                "edited": one("select count(*) from freshbooks_invoices where edited_at <= $c and voided_at is null"),
                "payments": one("select count(*) from freshbooks_payments where paid_at <= $c"),
                "clients": one("select count(*) from freshbooks_clients where created_at <= $c")}
    finally:
        con.close()


def loaded(settings) -> dict:
    (row,) = query(settings, """select (select count(*) from raw_freshbooks.invoices),
                                       (select count(*) from raw_freshbooks.invoices where vis_state = 1),
                                       (select count(*) from raw_freshbooks.invoices where notes like 'Fitting address%'),
                                       (select count(*) from raw_freshbooks.payments),
                                       (select count(*) from raw_freshbooks.clients)""")
    return dict(zip(("invoices", "deleted", "edited", "payments", "clients"), row))


def snapshot(settings) -> dict:
    return {t: sorted(query(settings, f"select * from raw_freshbooks.{t}"), key=str)
            for t in ("invoices", "payments", "clients")}


def fresh(tmp_path, world_dir):
    shutil.copytree(world_dir, tmp_path / "sandbox")
    settings = make_settings(tmp_path)
    return settings, Sandbox(settings.sandbox_dir)


@pytest.fixture(scope="module")
def world_dir(small_world_dir):
    return small_world_dir / "sandbox"


def test_full_load_rerun_and_incremental_after_advance(tmp_path, world_dir, start_emulator, monkeypatch):
    settings, sandbox = fresh(tmp_path, world_dir)
    running = start_emulator(FreshBooksEmulator, sandbox, time_scale=30)
    load(settings, running)
    before = truth(sandbox)
    assert loaded(settings) == before and before["deleted"] > 0 and before["edited"] > 0
    # times arrive in UTC although FreshBooks sends US/Eastern text
    con = sandbox.connect()
    inv_id, created = con.execute("select invoice_id, created_at from freshbooks_invoices "
                                  "where created_at <= ? order by invoice_id limit 1", [sandbox.clock]).fetchone()
    con.close()
    assert query(settings, f"select created_at from raw_freshbooks.invoices where id = {inv_id}")[0][0] == created
    first = snapshot(settings)
    load(settings, running)
    assert snapshot(settings) == first
    requests_before = running.emulator.counters["requests"]
    (cursor,) = query(settings, "select max(updated_at) from raw_freshbooks.invoices")[0]
    seen: list[dict] = []
    real_list = running.emulator._list

    def spy(request, kind):
        seen.append({"kind": kind, **request.query_params})
        return real_list(request, kind)

    monkeypatch.setattr(running.emulator, "_list", spy)
    sandbox.advance(24 * 75)
    load(settings, running)
    after = truth(sandbox)
    assert after["invoices"] > before["invoices"] and after["payments"] > before["payments"]
    assert loaded(settings) == after
    # 3 resources x 3 vis_states, one page each (+ retries of calls timed out on a loaded machine)
    assert running.emulator.counters["requests"] - requests_before <= 30
    # every incremental call filtered on updated, in Eastern time, from the cursor less the 2 h lookback
    assert {s["kind"] for s in seen} == {"invoices", "payments", "clients"}
    assert all("search[updated_min]" in s for s in seen)
    invoices_min = {s["search[updated_min]"] for s in seen if s["kind"] == "invoices"}
    assert invoices_min == {to_eastern(cursor - timedelta(hours=2))}
    for t in ("invoices", "payments", "clients"):
        assert query(settings, f"select count(*) - count(distinct id) from raw_freshbooks.{t}") == [(0,)]
    assert running.emulator.counters["over_limit"] == 0


def test_faults_and_small_pages_change_nothing(tmp_path, world_dir, start_emulator, monkeypatch):
    from finance_pipeline.platforms.freshbooks import client as client_module

    clean_settings, clean_sandbox = fresh(tmp_path / "clean", world_dir)
    load(clean_settings, start_emulator(FreshBooksEmulator, clean_sandbox, time_scale=30))
    monkeypatch.setattr(client_module, "PER_PAGE", 7)
    settings, sandbox = fresh(tmp_path / "faulty", world_dir)
    running = start_emulator(FreshBooksEmulator, sandbox, time_scale=30, fault_rate=0.10, timeout_delay_s=1.5)
    load(settings, running)
    assert sum(running.emulator.faults.values()) > 0
    assert snapshot(settings) == snapshot(clean_settings)


def test_bad_record_is_quarantined_and_the_run_goes_on(tmp_path, world_dir, start_emulator, monkeypatch):
    settings, sandbox = fresh(tmp_path, world_dir)
    running = start_emulator(FreshBooksEmulator, sandbox, time_scale=30)
    real = running.emulator._world

    def corrupt():
        invoices, payments, clients = real()
        if invoices:
            invoices[0] = {**invoices[0], "amount": {"amount": "12,50", "code": "GBP"}}
        return invoices, payments, clients

    monkeypatch.setattr(running.emulator, "_world", corrupt)
    quarantine = Quarantine("freshbooks")
    load(settings, running, quarantine)
    assert len(quarantine) == 1
    (row,) = quarantine.rows
    assert row["entity"] == "invoices" and "amount" in row["reason"]
    assert loaded(settings)["invoices"] == truth(sandbox)["invoices"] - 1
