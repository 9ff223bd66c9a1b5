"""The Sage Intacct dlt source through `run_platform`: a full load equals the world's visible truth, a
re-run changes nothing, and after `sandbox advance` an incremental run (WHENMODIFIED filter) picks up
new invoices, payments and a PO-number edit, merged on RECORDNO without duplicates."""
from __future__ import annotations

import shutil

import duckdb

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.sage_intacct.emulator import SageIntacctEmulator
from finance_pipeline.platforms.sage_intacct.source import sage_intacct_source
from finance_pipeline.sandbox.store import Sandbox
from tests.conftest import make_settings

TABLES = ("sodocuments", "sodocument_entries", "arpayments", "arpayment_details")


def load(settings, running):
    quarantine = Quarantine("sage_intacct")
    connection = Connection("sage_intacct", running.url, running.emulator.credentials(), settings)
    return run_platform(settings, "sage_intacct", sage_intacct_source(connection, quarantine), quarantine)


def query(settings, sql: str):
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def truth(sandbox: Sandbox) -> dict:
    con = sandbox.connect()
    c = {"c": sandbox.clock}
    try:
        return {
            "sodocuments": con.execute("select count(*) from sage_intacct_documents where created_at <= $c", c).fetchone()[0],
            "sodocument_entries": con.execute("select count(*) from sage_intacct_document_lines join "
                                              "sage_intacct_documents d using (record_no) where d.created_at <= $c",
                                              c).fetchone()[0],
            "arpayments": con.execute("select count(*) from sage_intacct_payments where paid_at <= $c", c).fetchone()[0],
            "arpayment_details": con.execute("select count(*) from sage_intacct_payments where paid_at <= $c",
                                             c).fetchone()[0],
        }
    finally:
        con.close()


def loaded(settings) -> dict:
    return {t: query(settings, f"select count(*) from raw_sage_intacct.{t}")[0][0] for t in TABLES}


def test_full_load_rerun_and_incremental_after_advance(tmp_path, small_world_dir, start_emulator):
    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    settings = make_settings(tmp_path)
    sandbox = Sandbox(settings.sandbox_dir)
    running = start_emulator(SageIntacctEmulator, sandbox, time_scale=30)
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    first = {t: sorted(query(settings, f"select * from raw_sage_intacct.{t}"), key=str)
             for t in TABLES}
    load(settings, running)
    assert {t: sorted(query(settings, f"select * from raw_sage_intacct.{t}"), key=str)
            for t in TABLES} == first
    # an invoice raised after the clock and edited later: created, then its PO number moves
    con = sandbox.connect()
    created, edited, record_no, po = con.execute(
        "select created_at, edited_at, record_no, edited_po_number from sage_intacct_documents "
        "where created_at > ? and edited_at is not null order by created_at limit 1", [sandbox.clock]).fetchone()
    con.close()
    sandbox.advance((created - sandbox.clock).total_seconds() / 3600 + 0.1)
    before = running.emulator.counters["requests"]
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    assert query(settings, f"select ponumber <> '{po}' from raw_sage_intacct.sodocuments where recordno = {record_no}") \
        == [(True,)]
    sandbox.advance((edited - sandbox.clock).total_seconds() / 3600 + 0.1)
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    assert query(settings, f"select ponumber from raw_sage_intacct.sodocuments where recordno = {record_no}") == [(po,)]
    assert running.emulator.counters["requests"] - before <= 12  # incremental: one page per resource per run
    for t in TABLES:
        assert query(settings, f"select count(*) - count(distinct recordno) from raw_sage_intacct.{t}") == [(0,)]
    assert running.emulator.counters["over_limit"] == 0
