"""Publishing trade invoices to the Xero emulator: read-back equals the marts; re-runs, edits, voids,
validation failures, injected faults and rate limits; secrets stay out of the logs."""
from __future__ import annotations

import json
import logging
from decimal import Decimal

import duckdb

from xero_fixtures import (  # noqa: F401  (xero_env is a fixture)
    XeroEnv, add_line, assert_xero_matches_marts, build_marts, set_line_quantity, set_status, start_xero, xero_env,
)
from conftest import make_settings
from finance_pipeline.platforms.xero.client import TOKEN_FILE, make_client
from finance_pipeline.platforms.xero.publish import publish_trade_invoices
from finance_pipeline.publish.ledger import PublishLedger


def publish(env: XeroEnv, **kw):
    return publish_trade_invoices(env.settings, env.connection(), env.warehouse, **kw)


def updated_dates(env: XeroEnv) -> dict[str, tuple[str, int]]:
    return {d["InvoiceNumber"]: (d["InvoiceID"], d["UpdatedDateUTC"]) for d in env.emulator.invoices()}


def ledger_rows(env: XeroEnv) -> dict[tuple[str, str], tuple]:
    con = duckdb.connect(str(env.warehouse), read_only=True)
    try:
        rows = con.execute("SELECT object_type, business_key, status, remote_id, attempts, last_error, content_hash "
                           "FROM ops.publish_ledger WHERE destination = 'xero'").fetchall()
    finally:
        con.close()
    return {(r[0], r[1]): r[2:] for r in rows}


def test_publish_reads_back_equal_and_a_rerun_writes_nothing(xero_env):
    made = build_marts(xero_env.warehouse, n_invoices=300)
    assert made["currencies"] == ["AUD", "EUR", "GBP", "USD"] and "uk_vat" in made["treatments"]

    first = publish(xero_env)
    assert first.ok, first.summary()
    assert first.created == made["invoices"] - made["voided"]
    assert first.of("invoice").skipped == made["voided"]  # voided before it ever existed: nothing posted
    assert first.of("contact").created == made["customers"]
    assert first.mismatches == [] and first.read_back == first.created
    assert_xero_matches_marts(xero_env.emulator, xero_env.warehouse)
    assert "INV-1007" not in {d["InvoiceNumber"] for d in xero_env.emulator.invoices()}

    # money: Xero's totals equal the marts' to the cent, currency by currency
    con = duckdb.connect(str(xero_env.warehouse), read_only=True)
    mart_totals = dict(con.execute("SELECT currency, SUM(total_amount) FROM marts.fct_invoices "
                                   "WHERE status <> 'voided' GROUP BY 1").fetchall())
    con.close()
    xero_totals: dict[str, Decimal] = {}
    for d in xero_env.emulator.invoices():
        xero_totals[d["CurrencyCode"]] = xero_totals.get(d["CurrencyCode"], Decimal(0)) + d["Total"]
    assert xero_totals == mart_totals

    ledger = ledger_rows(xero_env)
    assert all(v[0] == "done" for v in ledger.values())
    assert sum(1 for k in ledger if k[0] == "contact") == made["customers"]
    assert ledger[("invoice", "INV-1007")][1] is None  # done, with no remote record

    before, stats = updated_dates(xero_env), xero_env.emulator.stats()
    second = publish(xero_env)
    assert second.ok and second.writes == 0
    assert second.unchanged == made["invoices"] and second.of("contact").unchanged == made["customers"]
    assert second.requests == 1  # the read-back page; the token came from the token file
    after = xero_env.emulator.stats()
    for counter in ("invoices", "invoices_created", "invoices_updated", "contacts_created", "contacts_updated"):
        assert after[counter] == stats[counter], counter
    assert updated_dates(xero_env) == before


def test_an_edited_row_posts_exactly_one_update_to_the_same_invoice(xero_env):
    build_marts(xero_env.warehouse, n_invoices=120)
    assert publish(xero_env).ok
    before = updated_dates(xero_env)

    set_line_quantity(xero_env.warehouse, "INV-1010", 1, 777)
    result = publish(xero_env)
    assert (result.created, result.updated, result.voided) == (0, 1, 0)
    assert result.ok, result.summary()
    after = updated_dates(xero_env)
    assert after["INV-1010"][0] == before["INV-1010"][0]  # same InvoiceID
    assert after["INV-1010"][1] > before["INV-1010"][1]
    assert {k: v for k, v in after.items() if k != "INV-1010"} == {k: v for k, v in before.items() if k != "INV-1010"}
    doc = next(d for d in xero_env.emulator.invoices() if d["InvoiceNumber"] == "INV-1010")
    assert doc["LineItems"][0]["Quantity"] == 777

    add_line(xero_env.warehouse, "INV-1020", "POL-OAK-180", "Oak curtain pole 180 cm, finials", 3, Decimal("39.90"))
    result = publish(xero_env)
    assert (result.created, result.updated) == (0, 1) and result.ok
    assert updated_dates(xero_env)["INV-1020"][0] == before["INV-1020"][0]
    assert_xero_matches_marts(xero_env.emulator, xero_env.warehouse)
    assert len(xero_env.emulator.invoices()) == len(before)
    assert publish(xero_env).writes == 0


def test_a_voided_invoice_is_voided_in_xero(xero_env):
    build_marts(xero_env.warehouse, n_invoices=60)
    assert publish(xero_env).ok
    set_status(xero_env.warehouse, "INV-1020", "voided")
    result = publish(xero_env)
    assert (result.created, result.updated, result.voided) == (0, 0, 1) and result.ok, result.summary()
    doc = next(d for d in xero_env.emulator.invoices() if d["InvoiceNumber"] == "INV-1020")
    assert doc["Status"] == "VOIDED" and doc["AmountDue"] == 0
    assert_xero_matches_marts(xero_env.emulator, xero_env.warehouse)
    assert publish(xero_env).writes == 0

    # voided in Xero by the bookkeeper first, then in the marts: no error, nothing left to do
    client = make_client(xero_env.connection())
    invoice_id = next(d["InvoiceID"] for d in xero_env.emulator.invoices() if d["InvoiceNumber"] == "INV-1021")
    client.request("POST", f"Invoices/{invoice_id}", json={"Status": "VOIDED"})
    client.close()
    set_status(xero_env.warehouse, "INV-1021", "voided")
    result = publish(xero_env)
    assert result.ok and result.voided == 1, result.summary()


def test_item_errors_are_recorded_and_the_rest_continue(xero_env):
    build_marts(xero_env.warehouse, n_invoices=80)
    con = duckdb.connect(str(xero_env.warehouse))
    con.execute("UPDATE marts.fct_invoices SET currency = 'JPY' WHERE invoice_number = 'INV-1030'")
    con.execute("UPDATE marts.fct_invoice_lines SET account_kind = 'gift_card' WHERE invoice_number = 'INV-1031'")
    due = con.execute("SELECT due_on FROM marts.fct_invoices WHERE invoice_number = 'INV-1032'").fetchone()[0]
    con.execute("UPDATE marts.fct_invoices SET due_on = NULL WHERE invoice_number = 'INV-1032'")
    con.close()

    result = publish(xero_env)
    assert not result.ok
    assert result.created == 80 - 1 - 3 and result.failed == 3
    errors = {e.key: e.message for e in result.errors}
    assert "not subscribed to currency JPY" in errors["INV-1030"]  # Xero's per-element answer
    assert "gift_card" in errors["INV-1031"]  # our mapping refused it before sending
    assert "no due_on" in errors["INV-1032"]
    ledger = ledger_rows(xero_env)
    assert ledger[("invoice", "INV-1030")][0] == "failed" and "JPY" in ledger[("invoice", "INV-1030")][3]
    assert {m.key for m in result.mismatches} == {"INV-1030", "INV-1031", "INV-1032"}  # missing in Xero
    assert result.quarantined == 3  # each with its reason (Xero's own message for INV-1030)
    con = duckdb.connect(str(xero_env.warehouse), read_only=True)
    reasons = dict(con.execute("SELECT record_id, reason FROM ops.quarantine WHERE platform = 'xero'").fetchall())
    con.close()
    assert "not subscribed to currency JPY" in reasons["INV-1030"] and "gift_card" in reasons["INV-1031"]

    again = publish(xero_env)  # failures are retried, the others are left alone
    assert again.writes == 0 and again.failed == 3
    assert ledger_rows(xero_env)[("invoice", "INV-1030")][2] == 2  # attempts

    con = duckdb.connect(str(xero_env.warehouse))
    con.execute("UPDATE marts.fct_invoices SET currency = 'GBP' WHERE invoice_number = 'INV-1030'")
    con.execute("UPDATE marts.fct_invoice_lines SET account_kind = 'sales_trade' WHERE invoice_number = 'INV-1031'")
    con.execute("UPDATE marts.fct_invoices SET due_on = ? WHERE invoice_number = 'INV-1032'", [due])
    con.close()
    fixed = publish(xero_env)
    assert fixed.ok and fixed.created == 3, fixed.summary()
    assert_xero_matches_marts(xero_env.emulator, xero_env.warehouse)


def test_faults_never_duplicate_and_secrets_stay_out_of_logs(tmp_path, caplog):
    """10 % faults on every call — 429, 5xx, timeouts, truncated bodies, duplicate pages, and writes
    answered 500 or timing out *after* they were committed — still give one invoice per number."""
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    running = start_xero(settings, fault_rate=0.1)
    env = XeroEnv(settings, running)
    try:
        made = build_marts(env.warehouse, n_invoices=300)
        caplog.set_level(logging.DEBUG)
        result = publish(env, batch_size=10)  # more write requests, more chances for write faults
        assert result.ok, result.summary()
        assert result.created == made["invoices"] - made["voided"]
        assert_xero_matches_marts(env.emulator, env.warehouse)
        stats = env.emulator.stats()
        assert stats["invoices"] == result.created == stats["invoices_created"]
        assert stats["faults"].get("500_after_commit", 0) + stats["faults"].get("timeout_after_commit", 0) >= 1, stats
        assert stats["idempotent_replays"] >= 1  # a retried write was answered from the idempotency store
        assert stats["counters"].get("over_limit", 0) == 0

        rerun = publish(env, batch_size=10)
        assert rerun.ok and rerun.writes == 0
        assert_xero_matches_marts(env.emulator, env.warehouse)

        saved = json.loads((settings.secrets_dir / TOKEN_FILE).read_text())
        creds = env.emulator.credentials()
        secrets = [creds["client_secret"], creds["refresh_token"], creds["webhook_key"], saved["refresh_token"],
                   saved["access_token"]]
        text = caplog.text + repr(result.summary()) + repr(rerun.summary())
        assert "xero" in text.lower() and len(caplog.records) > 10
        for secret in secrets:
            assert secret not in text
        con = duckdb.connect(str(env.warehouse), read_only=True)
        stored = repr(con.execute("SELECT * FROM ops.publish_ledger").fetchall()) + repr(
            con.execute("SELECT * FROM ops.publish_log").fetchall())
        con.close()
        for secret in secrets:
            assert secret not in stored
    finally:
        running.stop()


def test_rate_limits_are_honoured(xero_env):
    """Small batches make ~150 calls, well over Xero's 60 per (time-scaled) minute: the client's
    limiter waits instead of letting the emulator refuse a single call."""
    build_marts(xero_env.warehouse, n_invoices=400)
    result = publish(xero_env, batch_size=3)
    assert result.ok, result.summary()
    assert result.requests > 2 * xero_env.emulator.MINUTE_LIMIT
    stats = xero_env.emulator.stats()
    assert stats["counters"].get("over_limit", 0) == 0
    assert result.seconds >= 2 * 60 / xero_env.settings.time_scale  # it had to wait for two windows


def test_a_lost_ledger_adopts_what_xero_holds(xero_env):
    """If the ledger is lost (or restored from an old backup), nothing is duplicated or re-sent:
    the look-up finds every invoice by number and records it."""
    build_marts(xero_env.warehouse, n_invoices=100)
    assert publish(xero_env).ok
    set_line_quantity(xero_env.warehouse, "INV-1005", 1, 99)
    con = duckdb.connect(str(xero_env.warehouse))
    con.execute("DELETE FROM ops.publish_ledger")
    con.close()
    before = updated_dates(xero_env)
    result = publish(xero_env)
    assert result.ok, result.summary()
    assert result.created == 0 and result.updated == 1  # only the row that really differs
    assert result.of("invoice").adopted == 99 and result.of("contact").adopted > 0
    after = updated_dates(xero_env)
    assert {k for k in after if after[k] != before[k]} == {"INV-1005"}
    assert_xero_matches_marts(xero_env.emulator, xero_env.warehouse)


def test_the_ledger_records_the_protocol(xero_env):
    build_marts(xero_env.warehouse, n_invoices=20)
    result = publish(xero_env)
    con = duckdb.connect(str(xero_env.warehouse), read_only=True)
    try:
        ledger = PublishLedger(con, "xero", run_id="inspect")
        log = ledger.log("invoice", "INV-1003")
        assert [e["event"] for e in log] == ["pending", "done"]  # pending committed before the POST
        assert log[-1]["remote_id"] and log[-1]["run_id"] == result.run_id
        assert ledger.pending() == []
    finally:
        con.close()
