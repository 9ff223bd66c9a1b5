"""Power BI publisher against the emulator: MSAL client credentials, one push dataset kept in step with
the marts, reloads without duplicates, a refused row quarantined, limits respected, read-back."""
from __future__ import annotations

from decimal import Decimal

import duckdb
import httpx
import pytest

from bi_fixtures import build_bi_marts, execute, mart_count, mart_sum
from conftest import make_settings
from finance_pipeline.platforms.powerbi import client as pbi_client
from finance_pipeline.platforms.powerbi.emulator import PowerBIEmulator
from finance_pipeline.platforms.powerbi.publish import check_read_back, publish_marts
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import SettingsError
from xero_fixtures import set_line_quantity

TABLES = ("fct_invoices", "fct_invoice_lines", "fct_payouts")


@pytest.fixture
def pbi(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_bi_marts(settings.warehouse_path)
    running = serve(PowerBIEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    runtime.write_endpoints(settings, {"powerbi": running})
    yield settings, running, made
    running.stop()


def _publish(settings, **kw):
    return publish_marts(settings, runtime.connection(settings, "powerbi"), settings.warehouse_path, **kw)


def _dataset(emulator) -> str:
    (dataset,) = emulator.datasets()
    return dataset["id"]


def _assert_matches_marts(settings, emulator, skip_rows: int = 0) -> None:
    dataset = _dataset(emulator)
    for table in TABLES:
        rows = emulator.rows(dataset, table)
        expected = mart_count(settings.warehouse_path, table) - (skip_rows if table == "fct_invoices" else 0)
        assert len(rows) == expected, table
    got = sum((r["total_amount"] for r in emulator.rows(dataset, "fct_invoices")), Decimal(0))
    if not skip_rows:
        assert got == mart_sum(settings.warehouse_path, "fct_invoices", "total_amount")


def test_publish_twice_changes_nothing_then_an_edit_reloads_that_table(pbi):
    settings, running, made = pbi
    emulator = running.emulator
    first = _publish(settings)
    assert first.ok and first.mismatches == [] and first.read_back == sum(made["tables"].values())
    dataset = _dataset(emulator)
    tables = emulator.tables(dataset)
    assert {c["name"]: c["dataType"] for c in tables["fct_payouts"]} == {
        "channel": "String", "payout_id": "Int64", "payout_date": "DateTime", "arrival_at": "DateTime",
        "currency": "String", "amount": "Decimal", "fees": "Decimal", "fx_rate": "Double", "reconciled": "Boolean",
        "note": "String"}
    _assert_matches_marts(settings, emulator)
    row = next(r for r in emulator.rows(dataset, "fct_payouts") if r["payout_id"] == 90_000_000)
    assert row["arrival_at"].endswith("Z") and isinstance(row["amount"], Decimal)

    before = emulator.stats()
    second = _publish(settings)
    assert second.ok and second.of("table").unchanged == 3 and second.writes == 0
    after = emulator.stats()
    for counter in ("row_posts", "row_deletes", "datasets_created", "tables_put"):
        assert after.get(counter, 0) == before.get(counter, 0), counter

    set_line_quantity(settings.warehouse_path, "INV-1002", 1, 9)
    third = _publish(settings)
    assert third.ok, third.summary()
    assert third.of("table").updated == 2 and third.of("table").unchanged == 1  # invoices + lines reloaded
    assert emulator.stats()["datasets"] == 1 and _dataset(emulator) == dataset  # updated in place
    _assert_matches_marts(settings, emulator)
    assert check_read_back(settings, runtime.connection(settings, "powerbi"), settings.warehouse_path).mismatches == []


def test_a_refused_row_is_quarantined_and_the_rest_published(pbi):
    settings, running, made = pbi
    # a customer name past Power BI's 4000-character limit for a string value
    execute(settings.warehouse_path, "UPDATE marts.fct_invoices SET customer_name = repeat('x', 4100) "
                                     "WHERE invoice_number = 'INV-1050'")
    result = _publish(settings, rows_per_post=40)
    assert result.of("row").failed == 1 and result.quarantined == 1
    (error,) = result.errors
    assert "4000" in error.message and error.key.startswith("fct_invoices:")
    assert result.mismatches == []  # the read-back expects the refused row to be absent
    _assert_matches_marts(settings, running.emulator, skip_rows=1)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    (reason,) = con.execute("SELECT reason FROM ops.quarantine WHERE platform = 'powerbi'").fetchone()
    con.close()
    assert reason.startswith("Power BI refused the row") and "4000 characters" not in reason and "4000" in reason
    # fixed in the marts: the next run loads the table whole, with that row
    execute(settings.warehouse_path, "UPDATE marts.fct_invoices SET customer_name = 'Bath Interiors' "
                                     "WHERE invoice_number = 'INV-1050'")
    fixed = _publish(settings)
    assert fixed.ok and fixed.mismatches == []
    _assert_matches_marts(settings, running.emulator)


def test_limits_are_respected_and_a_schema_change_is_applied(pbi):
    settings, running, made = pbi
    emulator = running.emulator
    # 5-row posts: ~145 POST rows requests, more than the 120 a (compressed) minute allows
    result = _publish(settings, rows_per_post=5)
    assert result.ok and emulator.counters["over_limit"] == 0
    assert emulator.stats()["row_posts"] > 120
    # a column added to a mart: the table's schema is replaced and the table reloaded
    execute(settings.warehouse_path, "ALTER TABLE marts.fct_payouts ADD COLUMN payout_method VARCHAR DEFAULT 'bank'")
    changed = _publish(settings)
    assert changed.ok and changed.of("schema").updated == 1
    cols = [c["name"] for c in emulator.tables(_dataset(emulator))["fct_payouts"]]
    assert cols[-1] == "payout_method"
    assert len(emulator.rows(_dataset(emulator), "fct_payouts")) == made["payouts"]


def test_the_service_validates_writes(pbi):
    settings, running, _ = pbi
    creds = running.emulator.credentials()
    auth = pbi_client.MsalAuth(runtime.connection(settings, "powerbi"))
    try:
        headers = dict(auth.headers())
    finally:
        auth.close()
    base = f"{creds['api_url']}/groups/{creds['group_id']}/datasets"
    bad_type = httpx.post(base, headers=headers, json={"name": "x", "defaultMode": "Push", "tables": [
        {"name": "t", "columns": [{"name": "a", "dataType": "Money"}]}]})
    assert bad_type.status_code == 400 and "dataType" in bad_type.json()["error"]["message"]
    bad_mode = httpx.post(base, headers=headers, json={"name": "x", "defaultMode": "Import", "tables": []})
    assert bad_mode.status_code == 400
    made = httpx.post(base, headers=headers, json={"name": "x", "defaultMode": "Push", "tables": [
        {"name": "t", "columns": [{"name": "a", "dataType": "Int64"}, {"name": "b", "dataType": "Decimal"}]}]})
    assert made.status_code == 201
    rows = f"{base}/{made.json()['id']}/tables/t/rows"
    assert httpx.post(rows, headers=headers, json={"rows": [{"a": "one"}]}).status_code == 400
    assert httpx.post(rows, headers=headers, json={"rows": [{"zz": 1}]}).status_code == 400
    assert httpx.post(rows, headers=headers, json={"rows": [{"a": 1}] * 10_001}).status_code == 400
    assert httpx.post(rows, headers=headers, json={"rows": [{"a": 1, "b": 2.50}]}).status_code == 200
    assert httpx.post(rows, headers={"Authorization": "Bearer nope"}, json={"rows": []}).status_code == 401


def test_credentials(pbi, monkeypatch):
    settings, running, _ = pbi
    # a wrong client secret: MSAL gets invalid_client and the run stops naming the variables
    connection = runtime.connection(settings, "powerbi")
    bad = type(connection)(connection.platform, connection.base_url,
                           {**connection.credentials, "client_secret": "wrong"}, settings)
    with pytest.raises(SettingsError, match="POWERBI_CLIENT_SECRET"):
        publish_marts(settings, bad, settings.warehouse_path)
    monkeypatch.setattr(pbi_client, "env", lambda name, default=None: default)
    with pytest.raises(SettingsError, match="POWERBI_TENANT_ID, POWERBI_CLIENT_ID, POWERBI_CLIENT_SECRET"):
        pbi_client.live_connection(make_settings(settings.data_dir, mode="live"))


def test_dry_run_sends_nothing(pbi):
    settings, running, _ = pbi
    result = _publish(settings, dry_run=True)
    assert result.dry_run["would_send"] == {"dataset.create (unless one named so exists)": 1,
                                            "table.replace rows (DELETE all, then POST)": 3}
    assert running.emulator.stats()["datasets"] == 0 and running.emulator.counters["requests"] == 0


def test_injected_faults_lose_or_double_nothing(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    build_bi_marts(settings.warehouse_path, n_invoices=60, n_payouts=80)
    running = serve(PowerBIEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(
        time_scale=settings.time_scale, fault_rate=0.04, fault_seed=5, timeout_delay_s=1.5)))
    runtime.write_endpoints(settings, {"powerbi": running})
    try:
        for _ in range(3):  # a table whose load had no definitive answer is reloaded by the next run
            result = _publish(settings, rows_per_post=100)
            if result.ok:
                break
        assert result.ok and result.mismatches == [], result.summary()
        assert sum(running.emulator.faults.values()) > 0
        _assert_matches_marts(settings, running.emulator)
    finally:
        running.stop()
