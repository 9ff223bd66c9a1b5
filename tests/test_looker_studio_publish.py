"""Looker Studio: the snapshot publish (atomic, idempotent) and the connector endpoint, asked what the
Apps Script connector asks (every table; field subsets in the requested order; date ranges;
pagination), with money to the cent equal to the marts and auth failures refused."""
from __future__ import annotations

import os
from datetime import date
from decimal import Decimal

import duckdb
import httpx
import orjson
import pytest

from bi_fixtures import build_bi_marts, execute, mart_count, mart_sum
from conftest import make_settings
from finance_pipeline.platforms.looker_studio import client as looker_client
from finance_pipeline.platforms.looker_studio.endpoint import LookerStudioEndpoint
from finance_pipeline.platforms.looker_studio.publish import publish_marts
from finance_pipeline.platforms.looker_studio.snapshot import read_manifest, snapshot_dir
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import SettingsError

TABLES = ("fct_invoices", "fct_invoice_lines", "fct_payouts")


@pytest.fixture(scope="module")
def looker(tmp_path_factory):
    root = tmp_path_factory.mktemp("looker")
    settings = make_settings(root)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    build_bi_marts(settings.warehouse_path)
    running = serve(LookerStudioEndpoint(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    runtime.write_endpoints(settings, {"looker_studio": running})
    first = _publish(settings)
    yield settings, running, first
    running.stop()


def _publish(settings, **kw):
    return publish_marts(settings, runtime.connection(settings, "looker_studio"), settings.warehouse_path, **kw)


def _post(running, path, body, token=None):
    token = running.emulator.credentials()["token"] if token is None else token
    r = httpx.post(f"{running.url}{path}", content=orjson.dumps(body), timeout=30,
                   headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    return r


def _data(running, table, fields, **extra):
    r = _post(running, "/connector/getData", {"configParams": {"table": table}, "fields": [{"name": f} for f in fields],
                                              "scriptParams": {"sampleExtraction": False}, **extra})
    assert r.status_code == 200, r.text
    return _loads(r.content)


def _loads(raw: bytes):
    import json

    return json.loads(raw, parse_float=Decimal)


def test_publish_snapshot_and_read_back(looker):
    settings, running, first = looker
    assert first.ok and first.mismatches == [] and first.of("table").created == 3, first.summary()
    manifest = read_manifest(snapshot_dir(settings.data_dir))
    assert manifest["version"] == 1 and set(manifest["tables"]) == set(TABLES)
    assert first.read_back == sum(mart_count(settings.warehouse_path, t) for t in TABLES)
    listing = httpx.get(f"{running.url}/connector/tables", timeout=10,
                        headers={"Authorization": f"Bearer {running.emulator.credentials()['token']}"}).json()
    assert {t["name"]: t["dateColumn"] for t in listing["tables"]} == {
        "fct_invoices": "issued_on", "fct_invoice_lines": None, "fct_payouts": "payout_date"}


def test_schema_and_data_as_the_connector_asks(looker):
    settings, running, _ = looker
    for table in TABLES:
        schema = _post(running, "/connector/getSchema", {"configParams": {"table": table}}).json()["schema"]
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            cols = [r[0] for r in con.execute("SELECT column_name FROM information_schema.columns WHERE "
                                              "table_schema = 'marts' AND table_name = ? ORDER BY ordinal_position",
                                              [table]).fetchall()]
        finally:
            con.close()
        assert [f["name"] for f in schema] == cols
        for f in schema:
            assert f["dataType"] in ("STRING", "NUMBER", "BOOLEAN")
            assert f["semantics"]["conceptType"] in ("DIMENSION", "METRIC")
        everything = _data(running, table, cols)
        assert len(everything["rows"]) == mart_count(settings.warehouse_path, table)
    fields = {f["name"]: f for f in _post(running, "/connector/getSchema",
                                          {"configParams": {"table": "fct_invoices"}}).json()["schema"]}
    assert fields["total_amount"]["semantics"] == {"conceptType": "METRIC", "semanticType": "NUMBER",
                                                   "isReaggregatable": True}
    assert fields["total_amount_home"]["semantics"]["semanticType"] == "CURRENCY_GBP"
    assert fields["issued_on"]["semantics"]["semanticType"] == "YEAR_MONTH_DAY"
    assert fields["updated_at"]["semantics"]["semanticType"] == "YEAR_MONTH_DAY_SECOND"
    assert fields["customer_id"]["dataType"] == "STRING" and fields["customer_country"]["semantics"][
        "semanticType"] == "COUNTRY_CODE"
    # a subset, in the requested order (not the table's)
    subset = _data(running, "fct_invoices", ["total_amount", "invoice_number", "issued_on", "currency"])
    assert [f["name"] for f in subset["schema"]] == ["total_amount", "invoice_number", "issued_on", "currency"]
    assert subset["filtersApplied"] is False
    row = subset["rows"][0]["values"]
    assert isinstance(row[0], Decimal) and row[1].startswith("INV-") and len(row[2]) == 8 and row[2].isdigit()
    # money to the cent
    assert sum(r["values"][0] for r in subset["rows"]) == mart_sum(settings.warehouse_path, "fct_invoices",
                                                                   "total_amount")
    payouts = _data(running, "fct_payouts", ["amount", "fees"])
    assert sum(r["values"][1] for r in payouts["rows"]) == mart_sum(settings.warehouse_path, "fct_payouts", "fees")


def test_date_range_and_pagination(looker):
    settings, running, _ = looker
    got = _data(running, "fct_payouts", ["payout_date", "amount"],
                dateRange={"startDate": "2025-02-01", "endDate": "2025-02-28"})
    assert len(got["rows"]) == 28 and {r["values"][0][:6] for r in got["rows"]} == {"202502"}
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        (want,) = con.execute("SELECT SUM(amount) FROM marts.fct_payouts WHERE payout_date BETWEEN ? AND ?",
                              [date(2025, 2, 1), date(2025, 2, 28)]).fetchone()
    finally:
        con.close()
    assert sum(r["values"][1] for r in got["rows"]) == want
    # a table without a date column ignores the range
    lines = _data(running, "fct_invoice_lines", ["invoice_number"], dateRange={"startDate": "2030-01-01",
                                                                               "endDate": "2030-01-02"})
    assert len(lines["rows"]) == mart_count(settings.warehouse_path, "fct_invoice_lines")
    pages, start = [], 1
    while True:
        page = _data(running, "fct_payouts", ["payout_id"], pagination={"startRow": start, "rowCount": 40})
        pages += [r["values"][0] for r in page["rows"]]
        start += len(page["rows"])
        if len(page["rows"]) < 40:
            break
    assert len(pages) == len(set(pages)) == 150 and page["totalRows"] == 150
    bad = _post(running, "/connector/getData", {"configParams": {"table": "fct_payouts"}, "fields": [{"name": "x"}]})
    assert bad.status_code == 400 and "unknown field" in bad.json()["error"]["message"]
    assert _post(running, "/connector/getSchema", {"configParams": {"table": "nope"}}).status_code == 400
    assert _post(running, "/connector/getData", {"configParams": {"table": "fct_payouts"}, "fields": [
        {"name": "amount"}], "dateRange": {"startDate": "01/02/2025", "endDate": "2025-02-28"}}).status_code == 400


def test_read_back_pages_through_a_mart_larger_than_one_answer(looker, monkeypatch):
    """A mart over one getData page (the endpoint answers at most 200 000 rows) is read in pages and
    counted whole: here pages of 7 rows, so every mart takes several."""
    from finance_pipeline.platforms.looker_studio import publish as looker_publish

    settings, running, _ = looker
    monkeypatch.setattr(looker_publish, "READ_PAGE", 7)
    before = running.emulator.counters["requests"]
    again = _publish(settings)
    assert again.ok and again.mismatches == [], again.summary()
    counts = {t: mart_count(settings.warehouse_path, t) for t in TABLES}
    assert again.read_back == sum(counts.values())
    pages = sum(-(-n // 7) for n in counts.values())  # getData calls: ceil(rows / 7) per mart
    assert running.emulator.counters["requests"] - before == len(TABLES) + pages


def test_auth_failures(looker):
    _, running, _ = looker
    body = {"configParams": {"table": "fct_payouts"}}
    assert _post(running, "/connector/getSchema", body, token="wrong").status_code == 401
    assert httpx.post(f"{running.url}/connector/getSchema", json=body, timeout=10).status_code == 401
    token = running.emulator.credentials()["token"]
    r = httpx.post(f"{running.url}/connector/getSchema", json=body, timeout=10, headers={"Authorization": token})
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert httpx.get(f"{running.url}/connector/tables", timeout=10,
                     headers={"Authorization": f"Basic {token}"}).status_code == 401


def test_publishing_twice_writes_nothing_then_an_edit_rewrites_one_file(looker):
    settings, running, _ = looker
    directory = snapshot_dir(settings.data_dir)
    before = {p.name: p.stat().st_mtime_ns for p in directory.iterdir()}
    second = _publish(settings)
    assert second.ok and second.of("table").unchanged == 3 and second.writes == 0
    assert {p.name: p.stat().st_mtime_ns for p in directory.iterdir()} == before
    execute(settings.warehouse_path, "UPDATE marts.fct_payouts SET amount = amount + 0.01 WHERE payout_id = 90000007")
    third = _publish(settings)
    assert third.ok and third.of("table").updated == 1 and third.of("table").unchanged == 2, third.summary()
    manifest = read_manifest(directory)
    assert manifest["version"] == 2
    new_files = {p.name for p in directory.iterdir()} - set(before)
    assert new_files == {manifest["tables"]["fct_payouts"]["file"]}
    got = _data(running, "fct_payouts", ["amount"])  # the endpoint serves the new version
    assert sum(r["values"][0] for r in got["rows"]) == mart_sum(settings.warehouse_path, "fct_payouts", "amount")
    dry = _publish(settings, dry_run=True)
    assert dry.dry_run["would_send"] == {} and read_manifest(directory)["version"] == 2
    assert not [p for p in os.listdir(directory) if p.endswith(".tmp")]


class _BehindAFlakyNetwork(LookerStudioEndpoint):
    """The endpoint injects no faults of its own (it is our service); between it and its readers sits
    a network that does: 429 / 503 from a proxy, answers that time out or fail after they were made."""

    def faults_apply(self, method: str, path: str) -> bool:
        return path.startswith("/connector/")


def test_read_back_through_injected_faults(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    build_bi_marts(settings.warehouse_path)
    running = serve(_BehindAFlakyNetwork(Sandbox(settings.sandbox_dir), EmulatorConfig(
        time_scale=settings.time_scale, fault_rate=0.3, fault_seed=4, timeout_delay_s=1.5)))
    try:
        runtime.write_endpoints(settings, {"looker_studio": running})
        first = _publish(settings)
        assert first.ok and first.mismatches == [], first.summary()
        assert first.read_back == sum(mart_count(settings.warehouse_path, t) for t in TABLES)
        assert sum(running.emulator.faults.values()) > 0, running.emulator.faults
        assert first.requests > 2 * len(TABLES)  # a getSchema and a getData per mart, and the retries
        again = _publish(settings)
        assert again.ok and again.writes == 0 and again.mismatches == []
        assert read_manifest(snapshot_dir(settings.data_dir))["version"] == 1
    finally:
        running.stop()


def test_live_connection_needs_the_token(monkeypatch, tmp_path):
    monkeypatch.delenv("LOOKER_STUDIO_TOKEN", raising=False)
    monkeypatch.setattr("finance_pipeline.settings._load_dotenv", lambda path: {})
    with pytest.raises(SettingsError, match="LOOKER_STUDIO_TOKEN"):
        looker_client.live_connection(make_settings(tmp_path))
    monkeypatch.setenv("LOOKER_STUDIO_TOKEN", "t0k3n")
    monkeypatch.setenv("LOOKER_STUDIO_URL", "https://finance.example.com")
    conn = looker_client.live_connection(make_settings(tmp_path))
    assert conn.base_url == "https://finance.example.com" and "t0k3n" not in repr(conn.credentials)


def test_a_run_killed_after_its_manifest_leaves_nothing_pending_once_another_mart_changes(tmp_path):
    # killed after writing the manifest, before marking done: the next run finds fct_invoices unchanged
    # in the snapshot while fct_payouts changed meanwhile — the unchanged tables are adopted as done too
    from publish_kill import pending_keys

    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    build_bi_marts(settings.warehouse_path, n_invoices=20, n_payouts=30)
    running = serve(LookerStudioEndpoint(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    runtime.write_endpoints(settings, {"looker_studio": running})
    try:
        assert _publish(settings).ok
        execute(settings.warehouse_path, "UPDATE ops.publish_ledger SET status = 'pending' WHERE destination = "
                "'looker_studio' AND business_key IN ('fct_invoices', 'fct_invoice_lines')")
        assert sorted(pending_keys(settings.warehouse_path, "looker_studio")) == ["fct_invoice_lines", "fct_invoices"]
        execute(settings.warehouse_path, "UPDATE marts.fct_payouts SET amount = amount + 1 WHERE payout_id = 90000001")
        again = _publish(settings)
        assert again.ok and again.of("table").updated == 1, again.summary()
        assert pending_keys(settings.warehouse_path, "looker_studio") == []
    finally:
        running.stop()


def test_read_back_finds_a_snapshot_that_differs_from_the_marts(looker, tmp_path):
    """The read-back asks for the money fields only: a cent off in one payout, or a row missing,
    is still found (here the marts move on after publishing; the snapshot is what was sent)."""
    import shutil

    from finance_pipeline.platforms.looker_studio.client import make_client
    from finance_pipeline.platforms.looker_studio.publish import read_back
    from finance_pipeline.publish.bi import load_marts

    settings, running, _ = looker
    changed = tmp_path / "changed.duckdb"
    shutil.copy(settings.warehouse_path, changed)
    con = duckdb.connect(str(changed))
    try:
        con.execute("update marts.fct_payouts set amount = amount + 0.01 "
                    "where payout_id = (select min(payout_id) from marts.fct_payouts)")
        con.execute("delete from marts.fct_invoice_lines where rowid = (select min(rowid) from marts.fct_invoice_lines)")
        marts = [m for m in load_marts(con) if m.name in TABLES]
        client = make_client(runtime.connection(settings, "looker_studio"))
        try:
            rows, mismatches = read_back(client, marts)
        finally:
            client.close()
    finally:
        con.close()
    found = {(m.key, m.field) for m in mismatches}
    assert ("fct_payouts", "amount") in found and ("fct_invoice_lines", "rows") in found, found
    assert not any(m.key == "fct_invoices" for m in mismatches)
    assert rows == sum(mart_count(settings.warehouse_path, t) for t in TABLES)
