"""SAP Business One as a publish destination: business partners and sales orders from the marts,
idempotent re-runs, edits patched in place with the lines replaced, voids cancelled, refusals
quarantined with B1's message, injected faults, an expired session, dry runs, the desk's own invoices
never written back, read-back equal to the marts."""
from __future__ import annotations

import duckdb
import pytest

from conftest import make_settings
from finance_pipeline.platforms.sap_business_one.publish import publish_orders, vat_group, MappingError
from sap_business_one_fixtures import assert_b1_matches_marts, b1_connection, start_b1
from xero_fixtures import build_marts, set_line_quantity, set_status, set_us_sales_tax


@pytest.fixture
def b1(tmp_path, small_world_dir):
    import shutil

    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    settings = make_settings(tmp_path)
    made = build_marts(settings.warehouse_path, n_invoices=36, n_customers=12)
    running = start_b1(settings)
    yield settings, running, made
    running.stop()


def _run(settings, running, **kw):
    return publish_orders(settings, b1_connection(running, settings), settings.warehouse_path, **kw)


def test_publish_then_rerun_edit_void(b1):
    settings, running, made = b1
    em = running.emulator
    first = _run(settings, running)
    assert first.ok, first.summary()
    assert first.created == made["invoices"] - made["voided"] and first.of("order").skipped == made["voided"]
    assert first.of("partner").created == made["customers"] and first.read_back == first.created
    assert_b1_matches_marts(em, settings.warehouse_path)
    assert set(made["currencies"]) >= {"GBP", "EUR"}

    again = _run(settings, running)
    assert again.ok and again.writes == 0 and again.unchanged == made["invoices"]

    set_line_quantity(settings.warehouse_path, "INV-1002", 1, 999)  # an edited invoice
    set_status(settings.warehouse_path, "INV-1003", "voided")  # a void after publishing
    third = _run(settings, running)
    assert third.ok, third.summary()
    assert third.updated == 1 and third.voided == 1 and third.created == 0
    assert em.store.counters()["orders_updated"] == 1 and em.store.counters()["orders_cancelled"] == 1
    assert_b1_matches_marts(em, settings.warehouse_path)


def test_us_sales_tax_orders_book_the_tax_to_the_liability_and_read_back_equal(b1):
    """The US division's invoices: lines in VAT group OS (outside UK VAT), the state's sales tax a line of
    its own posted to the US sales tax payable account; DocTotal the marts' total, VatSum 0."""
    settings, running, made = b1
    taxed = set_us_sales_tax(settings.warehouse_path, 3)
    first = _run(settings, running)
    assert first.ok and first.mismatches == [], first.summary()
    assert first.created == made["invoices"] - made["voided"]
    assert_b1_matches_marts(running.emulator, settings.warehouse_path)
    again = _run(settings, running)
    assert again.ok and again.writes == 0
    set_line_quantity(settings.warehouse_path, taxed[0], 1, 7)  # edited: patched with every line replaced
    third = _run(settings, running)
    assert third.ok and third.updated == 1 and third.mismatches == [], third.summary()
    assert_b1_matches_marts(running.emulator, settings.warehouse_path)


def test_emulator_refuses_unknown_vat_group_and_account(b1):
    from decimal import Decimal

    from finance_pipeline.platforms.sap_business_one.client import make_client

    settings, running, _ = b1
    client = make_client(b1_connection(running, settings))
    client.request("POST", "BusinessPartners", json={"CardCode": "C-T1", "CardName": "T1", "CardType": "cCustomer",
                                                     "Currency": "##"})
    line = {"ItemCode": "US-SALES-TAX", "Quantity": 1, "UnitPrice": Decimal("4.10"), "VatGroup": "OS",
            "AccountCode": "2220"}
    body = {"CardCode": "C-T1", "DocDate": "2025-03-03", "DocDueDate": "2025-04-02", "DocCurrency": "GBP"}
    for bad, field in (({**line, "AccountCode": "9999"}, "AcctCode"), ({**line, "VatGroup": "US"}, "VatGroup")):
        resp = client.request("POST", "Orders", json={**body, "NumAtCard": f"T-{field}", "DocumentLines": [bad]},
                              ok_statuses=(400,))
        assert resp.status == 400 and field in resp.content.decode(), resp.content
    made = client.request("POST", "Orders", json={**body, "NumAtCard": "T-ok", "DocumentLines": [line]}).json()
    assert Decimal(str(made["DocTotal"])) == Decimal("4.10") and Decimal(str(made["VatSum"])) == 0
    assert made["DocumentLines"][0]["AccountCode"] == "2220"


def test_faults_and_expired_session_never_duplicate(tmp_path, small_world_dir, monkeypatch):
    import shutil

    from finance_pipeline.platforms.sap_business_one import publish

    # small $batches: enough requests per run for the injected faults and expiries to land among them
    monkeypatch.setattr(publish, "BATCH_SIZE", 4)
    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    settings = make_settings(tmp_path)
    made = build_marts(settings.warehouse_path, n_invoices=30, n_customers=10, seed=3)
    running = start_b1(settings, fault_rate=0.25, fault_seed=5)
    try:
        em = running.emulator
        em.expire_sessions_every = 11  # sessions time out under the publisher's feet, faults or not
        results = []
        for _ in range(6):
            results.append(_run(settings, running))
            if results[-1].ok:
                break
        assert results[-1].ok, results[-1].summary()
        assert sum(em.faults.values()) > 0 and em.counters["invalid_session"] >= 1
        assert_b1_matches_marts(em, settings.warehouse_path)
        assert len(em.store.orders()) == made["invoices"] - made["voided"]
    finally:
        running.stop()


def test_session_expiry_mid_run_logs_in_again(b1):
    settings, running, made = b1
    em = running.emulator
    em.expire_sessions_every = 7  # every 7th request finds its session timed out
    result = _run(settings, running)
    assert result.ok
    assert em.counters["invalid_session"] >= 1 and em.counters["logins"] >= 2


def test_refused_record_quarantined_rest_published(b1):
    settings, running, made = b1
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("UPDATE marts.fct_invoices SET currency = 'XYZ' WHERE invoice_number = 'INV-1005'")
    con.execute("UPDATE marts.fct_invoice_lines SET sku = 'BAD SKU WITH SPACES' WHERE invoice_number = 'INV-1006'")
    con.close()
    result = _run(settings, running)
    assert not result.ok and result.failed == 2 and result.quarantined == 2
    assert result.created == made["invoices"] - made["voided"] - 2
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    rows = dict(con.execute("SELECT record_id, reason FROM ops.quarantine WHERE platform = 'sap_business_one'").fetchall())
    con.close()
    assert "Invalid currency code" in rows["INV-1005"] and "Invalid item code" in rows["INV-1006"]
    assert len(running.emulator.store.orders()) == result.created


def test_dry_run_writes_nothing(b1):
    settings, running, made = b1
    result = _run(settings, running, dry_run=True)
    assert result.dry_run["would_send"]["order.create"] == made["invoices"] - made["voided"]
    assert running.emulator.store.orders() == [] and running.emulator.store.partners() == []


def test_own_invoices_are_not_written_back(b1):
    settings, running, made = b1
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("UPDATE marts.fct_invoices SET channel = 'sap_business_one' WHERE invoice_number IN ('INV-1001', 'INV-1004')")
    con.close()
    result = _run(settings, running)
    assert result.ok and result.created == made["invoices"] - made["voided"] - 2
    refs = {o["NumAtCard"] for o in running.emulator.store.orders()}
    assert "INV-1001" not in refs and "INV-1004" not in refs


def test_vat_groups():
    from decimal import Decimal

    assert vat_group("uk_vat", Decimal("0.2")) == "O1" and vat_group("uk_vat", Decimal("0.05")) == "O2"
    assert vat_group("eu_reverse_charge", None) == "EC" and vat_group("us_resale_exempt", Decimal("0")) == "OX"
    assert vat_group("us_sales_tax", Decimal("0.08")) == "OS"
    with pytest.raises(MappingError):
        vat_group("au_gst", Decimal("0.1"))
