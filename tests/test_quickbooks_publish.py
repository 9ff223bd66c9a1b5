"""Publishing customers, trade invoices and payments to the QuickBooks emulator: read-back equals the
marts; re-runs, edits (SyncToken), voids, one bad record, faults, dry run; secrets stay out of logs."""
from __future__ import annotations

import json
import logging

import duckdb

from conftest import make_settings
from finance_pipeline.platforms.quickbooks.client import TOKEN_FILE
from finance_pipeline.platforms.quickbooks.publish import publish_to_quickbooks
from quickbooks_fixtures import QboEnv, assert_qbo_matches_marts, qbo_env, start_qbo  # noqa: F401
from xero_fixtures import build_marts, build_payments, set_line_quantity, set_status


def publish(env: QboEnv, **kw):
    return publish_to_quickbooks(env.settings, env.connection(), env.warehouse, **kw)


def snapshot(env: QboEnv, entity: str = "Invoice") -> dict[str, tuple[str, str]]:
    return {d.get("DocNumber") or d["Id"]: (d["Id"], d["SyncToken"]) for d in env.emulator.docs(entity)}


def test_publish_reads_back_equal_and_a_rerun_writes_nothing(qbo_env):
    made = build_marts(qbo_env.warehouse, n_invoices=120)
    build_payments(qbo_env.warehouse)
    first = publish(qbo_env)
    assert first.ok, first.summary()
    assert first.created == made["invoices"] - made["voided"] and first.of("invoice").skipped == made["voided"]
    assert first.of("customer").created == made["customers"]
    assert first.of("payment").created > 10
    assert first.mismatches == [] and first.read_back == first.created
    assert_qbo_matches_marts(qbo_env.emulator, qbo_env.warehouse)
    # the refunded duplicate payments applied nothing: one Payment per paid invoice
    assert len(qbo_env.emulator.docs("Payment")) == first.of("payment").created

    before, stats = {e: snapshot(qbo_env, e) for e in ("Invoice", "Customer", "Payment")}, qbo_env.emulator.stats()
    second = publish(qbo_env)
    assert second.ok and second.writes == 0, second.summary()
    assert second.requests == 3  # item and tax-code look-ups, one read-back page
    after = qbo_env.emulator.stats()
    for counter in ("invoice_created", "invoice_updated", "customer_created", "payment_created", "requestid_replays"):
        assert after.get(counter, 0) == stats.get(counter, 0), counter
    assert {e: snapshot(qbo_env, e) for e in ("Invoice", "Customer", "Payment")} == before


def test_an_edit_updates_the_same_invoice_with_its_current_synctoken(qbo_env):
    build_marts(qbo_env.warehouse, n_invoices=60)
    build_payments(qbo_env.warehouse)
    assert publish(qbo_env).ok
    before = snapshot(qbo_env)
    con = duckdb.connect(str(qbo_env.warehouse), read_only=True)
    paid = con.execute("SELECT invoice_number FROM marts.fct_invoices WHERE status = 'partially_paid' "
                       "ORDER BY 1 LIMIT 1").fetchone()[0]
    con.close()
    # a payment bumped this invoice's SyncToken after we created it: the update must use the current one
    assert before[paid][1] != "0"
    set_line_quantity(qbo_env.warehouse, paid, 1, 777)
    set_line_quantity(qbo_env.warehouse, "INV-1010", 1, 555)
    result = publish(qbo_env)
    assert result.ok and (result.created, result.updated) == (0, 2), result.summary()
    after = snapshot(qbo_env)
    for number in (paid, "INV-1010"):
        assert after[number][0] == before[number][0]  # same Id
        assert int(after[number][1]) == int(before[number][1]) + 1
    assert {k: v for k, v in after.items() if k not in (paid, "INV-1010")} == \
        {k: v for k, v in before.items() if k not in (paid, "INV-1010")}
    assert_qbo_matches_marts(qbo_env.emulator, qbo_env.warehouse)
    assert publish(qbo_env).writes == 0


def test_a_voided_invoice_is_voided(qbo_env):
    build_marts(qbo_env.warehouse, n_invoices=40)
    assert publish(qbo_env).ok
    set_status(qbo_env.warehouse, "INV-1020", "voided")
    result = publish(qbo_env)
    assert result.ok and result.voided == 1, result.summary()
    doc = next(d for d in qbo_env.emulator.docs("Invoice") if d["DocNumber"] == "INV-1020")
    assert doc["PrivateNote"] == "Voided" and doc["TotalAmt"] == 0
    assert_qbo_matches_marts(qbo_env.emulator, qbo_env.warehouse)
    assert publish(qbo_env).writes == 0


def test_one_bad_record_is_quarantined_with_quickbooks_message_and_the_rest_published(qbo_env):
    build_marts(qbo_env.warehouse, n_invoices=50)
    con = duckdb.connect(str(qbo_env.warehouse))
    # a document number longer than QBO's 21 characters, and an invoice in a currency the customer is not in
    con.execute("UPDATE marts.fct_invoice_lines SET invoice_number = 'INV-1030-REISSUED-2026-X' "
                "WHERE invoice_number = 'INV-1030'")
    con.execute("UPDATE marts.fct_invoices SET invoice_number = 'INV-1030-REISSUED-2026-X' "
                "WHERE invoice_number = 'INV-1030'")
    # a customer's later invoice in another currency (QBO fixes a customer's currency at its first)
    bad, currency = con.execute(
        "SELECT invoice_number, currency FROM (SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY "
        "issued_on, invoice_number) AS n FROM marts.fct_invoices WHERE status <> 'voided') WHERE n = 2 "
        "AND invoice_number > 'INV-1030' ORDER BY invoice_number LIMIT 1").fetchone()
    con.execute("UPDATE marts.fct_invoices SET currency = ? WHERE invoice_number = ?",
                ['USD' if currency != 'USD' else 'EUR', bad])
    con.close()

    result = publish(qbo_env)
    assert not result.ok
    assert result.failed == 2 and result.created == 50 - 1 - 2, result.summary()
    errors = {e.key: e.message for e in result.errors}
    assert errors["INV-1030-REISSUED-2026-X"].startswith("2050 ") and "Max:21" in errors["INV-1030-REISSUED-2026-X"]
    assert errors[bad].startswith("6000 ") and "must match the currency of the customer" in errors[bad]
    assert result.quarantined == 2
    con = duckdb.connect(str(qbo_env.warehouse), read_only=True)
    rows = con.execute("SELECT entity, record_id, reason FROM ops.quarantine WHERE platform = 'quickbooks' "
                       "ORDER BY record_id").fetchall()
    con.close()
    assert [(r[0], r[1]) for r in rows] == sorted([("Invoice", "INV-1030-REISSUED-2026-X"), ("Invoice", bad)])
    reasons = {r[1]: r[2] for r in rows}
    assert "Max:21" in reasons["INV-1030-REISSUED-2026-X"] and "currency" in reasons[bad]
    assert {d["DocNumber"] for d in qbo_env.emulator.docs("Invoice")} >= {"INV-1001", "INV-1050"}


def test_dry_run_sends_nothing_and_says_what_it_would_send(qbo_env):
    made = build_marts(qbo_env.warehouse, n_invoices=30)
    result = publish(qbo_env, dry_run=True)
    assert result.dry_run["would_send"]["invoice.create"] == made["invoices"] - made["voided"]
    con = duckdb.connect(str(qbo_env.warehouse), read_only=True)
    customers = con.execute("SELECT COUNT(DISTINCT customer_id) FROM marts.fct_invoices WHERE status <> 'voided'"
                            ).fetchone()[0]
    con.close()
    assert result.dry_run["would_send"]["customer.create"] == customers
    assert qbo_env.emulator.docs("Invoice") == [] and qbo_env.emulator.docs("Customer") == []
    plan = json.loads(open(result.dry_run["plan_file"]).read())
    assert plan["writes"][0]["object_type"] == "customer"
    con = duckdb.connect(str(qbo_env.warehouse), read_only=True)
    assert con.execute("SELECT COUNT(*) FROM ops.publish_ledger").fetchone()[0] == 0
    con.close()
    assert publish(qbo_env).created == made["invoices"] - made["voided"]


def test_faults_never_duplicate_and_secrets_stay_out_of_logs(tmp_path, caplog):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    running = start_qbo(settings, fault_rate=0.1)
    env = QboEnv(settings, running)
    try:
        made = build_marts(env.warehouse, n_invoices=70)
        build_payments(env.warehouse)
        caplog.set_level(logging.DEBUG)
        result = publish(env)
        assert result.ok, result.summary()
        assert result.created == made["invoices"] - made["voided"]
        assert_qbo_matches_marts(env.emulator, env.warehouse)
        stats = env.emulator.stats()
        assert stats["faults"].get("500_after_commit", 0) + stats["faults"].get("timeout_after_commit", 0) >= 1
        assert stats.get("requestid_replays", 0) >= 1  # a retried write was answered from its requestid
        assert stats["invoices"] == stats["invoice_created"] == result.created
        assert stats["counters"].get("over_limit", 0) == 0
        assert publish(env).writes == 0

        saved = json.loads((settings.secrets_dir / TOKEN_FILE).read_text())
        creds = env.emulator.credentials()
        text = caplog.text + repr(result.summary())
        assert "quickbooks" in text.lower()
        for secret in (creds["client_secret"], creds["refresh_token"], saved["refresh_token"], saved["access_token"]):
            assert secret not in text
    finally:
        running.stop()


def test_the_dagster_asset_publishes_and_its_read_back_check_passes(qbo_env):
    from dagster import materialize

    from finance_pipeline.defs.publish import READ_BACK_CHECK, quickbooks_trade_invoices
    from pipeline_helpers import pipeline_env

    build_marts(qbo_env.warehouse, n_invoices=30)
    build_payments(qbo_env.warehouse)
    qbo_env.connection()  # endpoints.json: the asset finds this emulator as any sandbox process would
    with pipeline_env(qbo_env.settings.data_dir, FINANCE_DESTINATIONS="quickbooks"):
        result = materialize([quickbooks_trade_invoices])
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert [(c.check_name, c.passed) for c in checks] == [(READ_BACK_CHECK, True)]
    assert_qbo_matches_marts(qbo_env.emulator, qbo_env.warehouse)
    with pipeline_env(qbo_env.settings.data_dir, FINANCE_DESTINATIONS="xero"):  # switched off: nothing sent
        before = qbo_env.emulator.stats()["requests"] if "requests" in qbo_env.emulator.stats() else None
        off = materialize([quickbooks_trade_invoices])
    assert off.success
    mats = [e.materialization for e in off.get_asset_materialization_events()]
    assert mats and mats[0].metadata["skipped"].value == "destination switched off"
    assert before is None or qbo_env.emulator.stats().get("requests") == before
