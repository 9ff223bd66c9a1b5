"""The hourly job on a small world with QuickBooks Online as a ledger channel: the trade counter's
invoices, sales receipts and bank-transfer payments in every mart (orders, lines, payments, trade
invoices, AR, GL, tax, payment status) equal the oracle to the cent; what the publisher wrote into
the company (another channel's `INV-…` invoice and its payment) is read but left out of the
channel; after `sandbox advance` an incremental run (LastUpdatedTime cursor + CDC) brings the new
documents, payments, edits, voids and deletes, and the marts still match."""
from __future__ import annotations

import shutil
from datetime import timedelta
from decimal import Decimal

import duckdb
import pytest

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.quickbooks.client import make_client, write
from finance_pipeline.platforms.quickbooks.emulator import QuickBooksEmulator
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from tests.conftest import make_settings
from tests.pipeline_helpers import compare_with_oracle, run_job

SOURCES = {"sources": {"quickbooks"}}


def publish_one_invoice(data) -> None:
    """What the publisher writes: a customer, another channel's invoice `INV-1999` and a card payment."""
    running = serve(QuickBooksEmulator(Sandbox(data / "sandbox"), EmulatorConfig(time_scale=30)))
    try:
        client = make_client(Connection("quickbooks", running.url, running.emulator.credentials(), make_settings(data)))
        cust = write(client, "Customer", {"DisplayName": "Leeds Living (7300000000999)"}, "t-c1")
        inv = write(client, "Invoice", {
            "CustomerRef": {"value": cust["Id"]}, "DocNumber": "INV-1999", "TxnDate": "2025-06-02",
            "DueDate": "2025-07-02", "Line": [{"DetailType": "SalesItemLineDetail", "Amount": Decimal("200.00"),
                                               "SalesItemLineDetail": {"ItemRef": {"value": "11"}, "Qty": 2,
                                                                       "UnitPrice": Decimal("100"),
                                                                       "TaxCodeRef": {"value": "2"}}}]}, "t-i1")
        write(client, "Payment", {"CustomerRef": {"value": cust["Id"]}, "TotalAmt": Decimal("240.00"),
                                  "PaymentRefNum": "ch_test", "PrivateNote": "ch_test",
                                  "Line": [{"Amount": Decimal("240.00"),
                                            "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}]}, "t-p1")
        client.close()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def pipeline_run(small_world_dir, tmp_path_factory):
    data = tmp_path_factory.mktemp("qbo-marts")
    shutil.copytree(small_world_dir / "sandbox", data / "sandbox")
    publish_one_invoice(data)
    run_job(data, job="hourly_sync", **SOURCES)
    yield data
    runtime.stop_emulators()


def _counts(warehouse):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute("""select
            (select count(*) from marts.fct_invoices where channel = 'quickbooks'),
            (select count(*) from marts.fct_invoices where channel = 'quickbooks' and status = 'voided'),
            (select count(*) from marts.fct_invoices where channel = 'quickbooks' and invoice_number like 'INV-QBS-%'),
            (select count(*) from marts.fct_payments where channel = 'quickbooks'),
            (select count(*) from marts.fct_gl_entries where channel = 'quickbooks' and account_code = '1100'),
            (select count(*) from marts.fct_invoices where channel = 'quickbooks' and paid_amount > 0
                and paid_amount < total_amount),
            (select count(*) from raw_quickbooks.invoices where doc_number = 'INV-1999'),
            (select count(*) from marts.fct_invoices where invoice_number like 'INV-INV-%')
        """).fetchone()
    finally:
        con.close()


def _world_ids(sandbox: Sandbox, where: str) -> set[str]:
    con = sandbox.connect()
    try:
        clock = sandbox.clock
        return {str(r[0]) for r in con.execute(f"select qbo_id from quickbooks_documents where {where}",
                                               [clock] * where.count("?")).fetchall()}
    finally:
        con.close()


def _raw_ids(warehouse) -> set[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {r[0] for r in con.execute("select id from raw_quickbooks.invoices union all "
                                          "select id from raw_quickbooks.sales_receipts").fetchall()}
    finally:
        con.close()


def test_marts_equal_the_oracle_then_incremental_after_advance(pipeline_run):
    sandbox = Sandbox(pipeline_run / "sandbox")
    warehouse = pipeline_run / "warehouse.duckdb"
    published_at = sandbox.clock  # the clock the publisher wrote at (it stands still until advanced)
    assert compare_with_oracle(warehouse, sandbox, channels={"quickbooks"}) == {}
    invoices, voided, receipts, payments, bank, part_paid, published, leaked = _counts(warehouse)
    assert invoices >= 30 and voided >= 1 and receipts >= 5 and payments >= 20 and bank >= payments
    assert published == 1 and leaked == 0  # the publisher's invoice is read, never a sale of this channel

    # move the clock to just after a document that will be deleted was raised, then past its deletion:
    # the second run reads it, the third sees CDC's tombstone and the marts drop it
    con = sandbox.connect()
    created, deleted = con.execute("""select created_at, deleted_at from quickbooks_documents
                                      where deleted_at > ? order by deleted_at limit 1""", [sandbox.clock]).fetchone()
    con.close()
    sandbox.advance((created - sandbox.clock).total_seconds() / 3600 + 0.5)
    run_job(pipeline_run, job="hourly_sync", **SOURCES)
    assert compare_with_oracle(warehouse, sandbox, channels={"quickbooks"}) == {}
    doomed = _world_ids(sandbox, "deleted_at > ? and created_at <= ?")
    assert doomed and doomed <= _raw_ids(warehouse)
    sandbox.advance((deleted - sandbox.clock + timedelta(hours=1)).total_seconds() / 3600)
    run_job(pipeline_run, job="hourly_sync", **SOURCES)
    assert compare_with_oracle(warehouse, sandbox, channels={"quickbooks"}) == {}
    gone = _world_ids(sandbox, "deleted_at <= ?")
    assert gone and not gone & _raw_ids(warehouse)
    after = _counts(warehouse)
    assert after[0] > invoices and after[3] > payments
    _assert_stamps_are_world_times(sandbox, warehouse, published_at)
    emulator = next(r.emulator for (d, name), r in runtime._running.items()
                    if name == "quickbooks" and d == str(pipeline_run))
    assert emulator.counters["requests"] > 0 and emulator.counters["over_limit"] == 0


def _assert_stamps_are_world_times(sandbox: Sandbox, warehouse, published_at) -> None:
    """LastUpdatedTime is the world's time of a document's latest change (so a voided invoice's
    cancellation time is when it was voided), and the publisher's writes carry the sandbox clock they
    were made at: nothing depends on the wall clock or on when the emulator happened to be asked."""
    con = sandbox.connect()
    try:
        voided_at = {str(i): v for i, v in con.execute(
            "select qbo_id, voided_at from quickbooks_documents where voided_at <= ?", [sandbox.clock]).fetchall()}
        edited_unpaid = {str(i): e for i, e in con.execute(
            """select qbo_id, edited_at from quickbooks_documents d where edited_at <= ? and voided_at is null
               and deleted_at is null and not exists (select 1 from quickbooks_payments p
                                                       where p.invoice_qbo_id = d.qbo_id and p.created_at <= ?)""",
            [sandbox.clock] * 2).fetchall()}
    finally:
        con.close()
    wh = duckdb.connect(str(warehouse), read_only=True)
    try:
        raw = dict(wh.execute("select id, updated_at from raw_quickbooks.invoices").fetchall())
        cancelled = dict(wh.execute("select order_id, cancelled_at from marts.fct_orders "
                                    "where channel = 'quickbooks' and cancelled_at is not null").fetchall())
        published = wh.execute("select updated_at from raw_quickbooks.invoices where doc_number = 'INV-1999'"
                               ).fetchall()
    finally:
        wh.close()
    assert voided_at and {i: raw[i] for i in voided_at} == voided_at
    assert cancelled == voided_at
    assert {i: raw[i] for i in edited_unpaid if i in raw} == edited_unpaid
    assert published == [(published_at.replace(microsecond=0),)]
