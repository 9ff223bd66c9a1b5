"""The hourly job (every registered source, dbt, alerts) on a small world: the Zoho Books rows of
every mart — the EU trade desk's invoices, their bank-transfer payments, AR, GL, tax, payment
status — equal the oracle to the cent, and the organisation's limits were never exceeded."""
from __future__ import annotations

import shutil

import duckdb

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.zoho_books.client import call, make_client
from finance_pipeline.platforms.zoho_books.emulator import ZohoBooksEmulator
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from tests.conftest import make_settings
from tests.pipeline_helpers import compare_with_oracle, run_job


def publish_one_invoice(tmp_path) -> None:
    """What the publisher writes (another channel's invoice `INV-…` and a payment of it) is in the
    organisation too: the source reads it, the channel models must leave it out."""
    running = serve(ZohoBooksEmulator(Sandbox(tmp_path / "sandbox"), EmulatorConfig(time_scale=30)))
    try:
        client = make_client(Connection("zoho_books", running.url, running.emulator.credentials(),
                                        make_settings(tmp_path)))
        gbp = next(c["currency_id"] for c in call(client, "GET", "settings/currencies")["currencies"]
                   if c["currency_code"] == "GBP")
        contact = call(client, "POST", "contacts", body={"contact_name": "Leeds Living (7300000000999)",
                                                          "contact_number": "7300000000999", "currency_id": gbp})
        cid = contact["contact"]["contact_id"]
        invoice = call(client, "POST", "invoices", {"ignore_auto_number_generation": "true"}, {
            "customer_id": cid, "invoice_number": "INV-1999", "date": "2025-06-02", "due_date": "2025-07-02",
            "line_items": [{"name": "Linen", "rate": 100, "quantity": 2, "tax_id": "460000000031001"}]})
        call(client, "POST", "customerpayments", body={
            "customer_id": cid, "amount": 240, "date": "2025-06-20", "payment_mode": "creditcard",
            "reference_number": "ch_test", "invoices": [{"invoice_id": invoice["invoice"]["invoice_id"],
                                                         "amount_applied": 240}]})
        client.close()
    finally:
        running.stop()


def test_zoho_books_marts_equal_the_oracle(small_world_dir, tmp_path):
    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    publish_one_invoice(tmp_path)
    try:
        run_job(tmp_path, job="hourly_sync", sources={"zoho_books"})
        sandbox = Sandbox(tmp_path / "sandbox")
        warehouse = tmp_path / "warehouse.duckdb"
        assert compare_with_oracle(warehouse, sandbox, channels={"zoho_books"}) == {}
        con = duckdb.connect(str(warehouse), read_only=True)
        invoices, void, paid, fx = con.execute("""
            select count(*), count(*) filter (where status = 'voided'), count(*) filter (where paid_amount > 0),
                   (select count(*) from marts.fct_gl_entries where channel = 'zoho_books' and account_code = '7100')
            from marts.fct_invoices where channel = 'zoho_books'""").fetchone()
        numbers = [r[0] for r in con.execute(
            "select invoice_number from marts.fct_invoices where channel = 'zoho_books'").fetchall()]
        published = con.execute("select count(*) from raw_zoho_books.invoices where invoice_number = 'INV-1999'"
                                ).fetchone()[0]
        con.close()
        assert invoices >= 20 and void >= 1 and paid >= 10 and fx >= 1
        assert all(n.startswith("INV-EU-") for n in numbers) and published == 1
        emulator = runtime._running[(str(tmp_path), "zoho_books")].emulator
        assert emulator.counters["requests"] > 0 and emulator.counters["over_limit"] == 0
    finally:
        runtime.stop_emulators()
