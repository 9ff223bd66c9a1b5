"""The Zoho Books publisher against the emulator: contacts, invoices and payments from the marts,
idempotent re-runs, in-place updates and voids, a refused record quarantined with Zoho's message,
injected faults, dry runs, read-back equal to the marts; and the write side of the emulator (real
error codes for duplicates, auth, organisation, limits)."""
from __future__ import annotations

import duckdb
import httpx
import pytest

from finance_pipeline.platforms.zoho_books.client import ZohoApiError, call, make_client
from finance_pipeline.platforms.zoho_books.publish import publish_to_zoho_books
from finance_pipeline.sandbox import runtime
from xero_fixtures import build_marts, build_payments, set_line_quantity, set_status, set_us_sales_tax
from zoho_books_fixtures import assert_no_duplicates, assert_zoho_matches_marts, start_zoho, zoho_settings


@pytest.fixture
def env(tmp_path, small_world_dir):
    settings = zoho_settings(tmp_path, small_world_dir)
    made = build_marts(settings.warehouse_path, n_invoices=40, n_customers=12)
    build_payments(settings.warehouse_path)
    running = start_zoho(settings)
    yield settings, running, made
    running.stop()


def publish(settings, **kw):
    return publish_to_zoho_books(settings, runtime.connection(settings, "zoho_books"), settings.warehouse_path, **kw)


def test_publish_rerun_update_void_and_read_back(env):
    settings, running, made = env
    emulator = running.emulator
    first = publish(settings)
    assert first.ok, first.summary()
    assert first.created == made["invoices"] - made["voided"] and first.read_back >= first.created
    assert first.of("payment").created > 10 and first.of("contact").created + first.of("contact").adopted >= 1
    assert_zoho_matches_marts(emulator, settings.warehouse_path)
    assert_no_duplicates(emulator)
    # the EU desk's own invoices were never touched
    assert not [d for d in emulator.docs("invoice") if d["invoice_number"].startswith("EU-")]

    again = publish(settings)
    assert again.ok and again.writes == 0 and again.unchanged == made["invoices"]

    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    (grow, qty), (gone,) = con.execute(
        "SELECT i.invoice_number, l.quantity FROM marts.fct_invoices i JOIN marts.fct_invoice_lines l USING "
        "(invoice_number) WHERE i.status IN ('unpaid', 'overdue') AND l.line_number = 1 ORDER BY 1 LIMIT 1"
    ).fetchone(), con.execute("SELECT max(invoice_number) FROM marts.fct_invoices WHERE status = 'paid'").fetchone()
    con.close()
    set_line_quantity(settings.warehouse_path, grow, 1, qty + 2)
    set_status(settings.warehouse_path, gone, "voided")  # paid: its payment is deleted, then it is voided
    third = publish(settings)
    assert third.ok, third.summary()
    assert third.updated == 1 and third.voided == 1 and third.created == 0, third.summary()
    assert third.of("payment").voided >= 1
    held = {d["invoice_number"]: d for d in emulator.docs("invoice")}
    assert held[gone]["status"] == "void" and held[grow]["balance"] == held[grow]["total"]
    assert_zoho_matches_marts(emulator, settings.warehouse_path)
    assert_no_duplicates(emulator)


def test_us_sales_tax_invoices_book_the_tax_to_the_liability_and_read_back_equal(env):
    """The US division's invoices: goods out of scope of UK VAT, the state's sales tax one line to the
    US sales tax payable account; Zoho's totals equal the marts', its VAT 0."""
    settings, running, made = env
    taxed = set_us_sales_tax(settings.warehouse_path, 3)
    first = publish(settings)
    assert first.ok and first.mismatches == [], first.summary()
    assert first.created == made["invoices"] - made["voided"]
    assert_zoho_matches_marts(running.emulator, settings.warehouse_path)
    held = {d["invoice_number"]: d for d in running.emulator.docs("invoice")}
    for number in taxed:
        last = held[number]["line_items"][-1]
        assert last["name"] == "US sales tax" and last["tax_exemption_id"] == "460000000032007", last
    again = publish(settings)
    assert again.ok and again.writes == 0 and again.mismatches == []


def test_emulator_refuses_an_unknown_account(env):
    settings, running, _ = env
    client = make_client(runtime.connection(settings, "zoho_books"))
    contact = call(client, "GET", "contacts")["contacts"][0]
    accounts = call(client, "GET", "chartofaccounts")["chartofaccounts"]
    assert {"2220": "other_current_liability"}.items() <= {a["account_code"]: a["account_type"]
                                                          for a in accounts}.items()
    line = {"name": "US sales tax", "rate": 4, "quantity": 1, "tax_exemption_id": "460000000032007"}
    body = {"customer_id": contact["contact_id"], "invoice_number": "T-9", "date": "2025-03-01"}
    with pytest.raises(ZohoApiError) as unknown:
        call(client, "POST", "invoices", {"ignore_auto_number_generation": "true"},
             {**body, "line_items": [{**line, "account_id": "460000000099999"}]})
    assert unknown.value.code == 4 and "account_id" in unknown.value.message
    liability = next(a["account_id"] for a in accounts if a["account_code"] == "2220")
    made = call(client, "POST", "invoices", {"ignore_auto_number_generation": "true"},
                {**body, "line_items": [{**line, "account_id": liability}]})["invoice"]
    assert made["total"] == 4 and made["tax_total"] == 0


def test_refused_record_is_quarantined_and_the_rest_published(env):
    settings, running, made = env
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("UPDATE marts.fct_invoice_lines SET tax_amount = tax_amount + 0.05 WHERE invoice_number = "
                "(SELECT min(invoice_number) FROM marts.fct_invoices WHERE tax_treatment = 'uk_vat' "
                "AND status <> 'voided')")
    con.execute("UPDATE marts.fct_invoices SET currency = 'CHF' WHERE invoice_number = 'INV-1010'")
    bad = con.execute("SELECT min(invoice_number) FROM marts.fct_invoices WHERE tax_treatment = 'uk_vat' "
                      "AND status <> 'voided'").fetchone()[0]
    con.close()
    result = publish(settings)
    failed = {e.key: e.message for e in result.errors if e.object_type == "invoice"}
    assert bad in failed and "would charge" in failed[bad]
    assert "INV-1010" in failed and "CHF" in failed["INV-1010"]
    assert result.created == made["invoices"] - made["voided"] - 2
    assert result.quarantined >= 2
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    rows = con.execute("SELECT record_id, reason FROM ops.quarantine WHERE platform = 'zoho_books'").fetchall()
    con.close()
    assert {bad, "INV-1010"} <= {r[0] for r in rows}


def test_injected_faults_then_clean_rerun(env):
    settings, running, made = env
    running.stop()
    running = start_zoho(settings, fault_rate=0.15, fault_seed=3)
    try:
        publish(settings)
        publish(settings)
        running.emulator.config.fault_rate = 0.0
        last = publish(settings)
        assert last.ok, last.summary()
        assert_no_duplicates(running.emulator)
        assert_zoho_matches_marts(running.emulator, settings.warehouse_path)
        assert sum(running.emulator.faults.values()) > 0
    finally:
        running.stop()


def test_dry_run_writes_nothing(env):
    settings, running, made = env
    result = publish(settings, dry_run=True)
    would = result.dry_run["would_send"]
    assert would["invoice.create"] == made["invoices"] - made["voided"] and would["payment.create"] > 10
    assert not [k for k in running.emulator.store.counters() if k.endswith("_created")]
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    assert con.execute("SELECT count(*) FROM ops.publish_ledger").fetchone()[0] == 0
    con.close()


def test_emulator_errors_are_zohos(env):
    settings, running, _ = env
    client = make_client(runtime.connection(settings, "zoho_books"))
    contact = call(client, "GET", "contacts")["contacts"][0]
    body = {"customer_id": contact["contact_id"], "invoice_number": "T-1", "date": "2025-03-01",
            "line_items": [{"name": "Linen", "rate": 10, "quantity": 3,
                            "tax_exemption_id": "460000000032001"}]}
    made = call(client, "POST", "invoices", {"ignore_auto_number_generation": "true"}, body)["invoice"]
    assert made["total"] == 30 and made["status"] in ("sent", "overdue")
    with pytest.raises(ZohoApiError) as dup:
        call(client, "POST", "invoices", {"ignore_auto_number_generation": "true"}, body)
    assert dup.value.code == 1001 and "already exists" in dup.value.message
    with pytest.raises(ZohoApiError) as missing:
        call(client, "GET", "invoices/1")
    assert missing.value.code == 1002
    with pytest.raises(ZohoApiError) as no_tax:
        call(client, "POST", "invoices", {"ignore_auto_number_generation": "true"},
             {**body, "invoice_number": "T-2", "line_items": [{"name": "x", "rate": 1, "quantity": 1}]})
    assert no_tax.value.code == 4
    over = {"customer_id": contact["contact_id"], "amount": 31, "date": "2025-03-02", "payment_mode": "banktransfer",
            "invoices": [{"invoice_id": made["invoice_id"], "amount_applied": 31}]}
    with pytest.raises(ZohoApiError, match="exceeds"):
        call(client, "POST", "customerpayments", body=over)
    base = running.url + "/books/v3/invoices"
    token = client.auth.headers()["Authorization"]
    assert httpx.get(base, params={"organization_id": "20061234567"},
                     headers={"Authorization": "Bearer x"}).json()["code"] == 57
    assert httpx.get(base, headers={"Authorization": token}).json()["code"] == 6041
    assert httpx.get(base, params={"organization_id": "20061234567", "per_page": 500},
                     headers={"Authorization": token}).status_code == 400
    client.close()
