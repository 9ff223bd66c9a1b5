"""Sage Intacct publisher against the emulator: customers created when missing, one Sales Invoice per
mart invoice (documentno = invoice number), a re-run writes nothing, an edit updates in place, a void
deletes, a refused record is quarantined with Intacct's message, a lost ledger is recovered by
document-number look-up (no duplicate), duplicate document numbers are refused, dry run, read-back."""
from __future__ import annotations

import dataclasses

import duckdb
import pytest

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.sage_intacct import publish as si_publish
from finance_pipeline.platforms.sage_intacct import wire
from finance_pipeline.platforms.sage_intacct.client import make_client
from finance_pipeline.platforms.sage_intacct.emulator import SageIntacctEmulator
from finance_pipeline.sandbox import runtime
from xero_fixtures import build_marts, mart_rows, set_line_quantity, set_status


@pytest.fixture
def si(settings, start_emulator):
    made = build_marts(settings.warehouse_path, n_invoices=80, n_customers=15)
    running = start_emulator(SageIntacctEmulator, runtime_sandbox(settings), time_scale=settings.time_scale)
    runtime.write_endpoints(settings, {"sage_intacct": running})
    return settings, running, made


def runtime_sandbox(settings):
    from finance_pipeline.sandbox.store import Sandbox

    return Sandbox(settings.sandbox_dir)


def _publish(settings, running, **kw):
    conn = Connection("sage_intacct", running.url, running.emulator.credentials(), settings)
    return si_publish.publish_trade_invoices(settings, conn, settings.warehouse_path, **kw)


def _docs(emulator) -> dict[str, dict]:
    return {d["DOCNO"]: d for d in emulator.documents()}


def test_publish_rerun_edit_void_and_read_back(si):
    settings, running, made = si
    emulator = running.emulator
    expected = made["invoices"] - made["voided"]
    first = _publish(settings, running)
    assert first.ok, first.summary()
    assert first.created == expected and first.read_back == expected and first.mismatches == []
    docs = _docs(emulator)
    marts = mart_rows(settings.warehouse_path)
    assert len(docs) == expected and "INV-1007" not in docs  # voided before it was published: never sent
    sample = docs["INV-1001"]
    assert sample["TRX_TOTAL"] == str(marts["INV-1001"]["total_amount"])
    assert sample["WHENDUE"] == wire.idate(marts["INV-1001"]["due_on"]) and sample["PONUMBER"] == "#1001"
    assert len(emulator.customers()) == made["customers"]

    counters = emulator.state.counters()
    second = _publish(settings, running)
    assert second.ok and second.unchanged == expected and second.writes == 0
    assert emulator.state.counters() == counters

    set_line_quantity(settings.warehouse_path, "INV-1003", 1, 7)
    set_status(settings.warehouse_path, "INV-1005", "voided")
    third = _publish(settings, running)
    assert third.ok, third.summary()
    assert third.updated == 1 and third.voided == 1 and third.created == 0
    after = _docs(emulator)
    assert after["INV-1003"]["RECORDNO"] == docs["INV-1003"]["RECORDNO"]  # updated in place
    assert after["INV-1003"]["TRX_TOTAL"] == str(mart_rows(settings.warehouse_path)["INV-1003"]["total_amount"])
    assert "INV-1005" not in after and len(after) == expected - 1


def test_refused_record_quarantined_and_the_rest_published(si):
    settings, running, made = si
    set_line_quantity(settings.warehouse_path, "INV-1010", 1, 0)  # Intacct refuses a zero quantity
    result = _publish(settings, running)
    assert not result.ok and result.failed == 1 and result.mismatches == []
    assert result.created == made["invoices"] - made["voided"] - 1 and result.quarantined == 1
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    reason, = con.execute("SELECT reason FROM ops.quarantine WHERE platform = 'sage_intacct'").fetchone()
    con.close()
    assert "quantity must be greater than zero" in reason and "BL01001973" in reason
    assert "INV-1010" not in _docs(running.emulator)


def test_lost_ledger_recovered_by_document_number_and_duplicates_refused(si):
    settings, running, made = si
    expected = made["invoices"] - made["voided"]
    assert _publish(settings, running).created == expected
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("DELETE FROM ops.publish_ledger WHERE destination = 'sage_intacct'")
    con.close()
    again = _publish(settings, running)
    assert again.ok and again.created == 0 and again.of("invoice").adopted == expected
    assert len(running.emulator.documents()) == expected
    # the gateway itself refuses a second document with the same number
    session = make_client(Connection("sage_intacct", running.url, running.emulator.credentials(), settings))
    inv = si_publish.load_trade_invoices(duckdb.connect(str(settings.warehouse_path), read_only=True))[0]
    body = si_publish.invoice_payload(inv)
    result, = session.call([si_publish.function_xml("create", inv.invoice_number, body)], read=False)
    assert not result.ok and result.errors[0].errorno == "BL34000061" and "already exists" in result.message()


def test_dry_run_sends_nothing(si):
    settings, running, made = si
    result = _publish(dataclasses.replace(settings, publish_dry_run=True), running, dry_run=True)
    assert result.dry_run["would_send"]["invoice.create_sotransaction"] == made["invoices"] - made["voided"]
    assert running.emulator.documents() == [] and running.emulator.counters["requests"] == 0


def test_injected_faults_leave_no_duplicate_and_a_rerun_writes_nothing(settings, start_emulator):
    """15 % of gateway calls fail (429 GW-0010, 503, a timeout or a 500 after Intacct committed the
    document): the publisher retries and looks documents up by number, so every invoice ends up in
    Intacct once, equal to the marts, and a clean re-run writes nothing."""
    made = build_marts(settings.warehouse_path, n_invoices=40, n_customers=10)
    expected = made["invoices"] - made["voided"]
    running = start_emulator(SageIntacctEmulator, runtime_sandbox(settings), time_scale=settings.time_scale,
                             fault_rate=0.15, fault_seed=7, timeout_delay_s=1.0)
    runtime.write_endpoints(settings, {"sage_intacct": running})
    for _ in range(4):
        result = _publish(settings, running)
        if result.ok:
            break
    assert result.ok, result.summary()
    assert sum(running.emulator.faults.values()) > 0, running.emulator.faults
    assert result.mismatches == []  # its read-back, through the faults, found Intacct equal to the marts
    running.emulator.config.fault_rate = 0.0
    docs = running.emulator.documents()
    assert len(docs) == len({d["DOCNO"] for d in docs}) == expected
    marts = mart_rows(settings.warehouse_path)
    assert all(d["TRX_TOTAL"] == str(marts[d["DOCNO"]]["total_amount"]) for d in docs)
    assert len(running.emulator.customers()) == made["customers"]
    again = _publish(settings, running)
    assert again.ok and again.writes == 0 and again.unchanged == expected
