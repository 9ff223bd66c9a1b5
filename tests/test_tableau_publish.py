"""Tableau publisher against the emulator: .hyper extracts built with the Hyper API, published with
overwrite (in place, never duplicated), chunked uploads, one session per PAT, a refused row
quarantined, read-back of the published extracts."""
from __future__ import annotations

import threading

import duckdb
import httpx
import pytest

from bi_fixtures import build_bi_marts, execute, mart_count
from conftest import make_settings
from finance_pipeline.platforms.tableau import client as tab_client
from finance_pipeline.platforms.tableau.emulator import TableauEmulator
from finance_pipeline.platforms.tableau.publish import check_read_back, multipart, publish_marts, request_payload
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import SettingsError
from xero_fixtures import set_line_quantity

TABLES = {"fct_invoices", "fct_invoice_lines", "fct_payouts"}


@pytest.fixture
def tab(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_bi_marts(settings.warehouse_path)
    running = serve(TableauEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    runtime.write_endpoints(settings, {"tableau": running})
    yield settings, running, made
    running.stop()


def _publish(settings, **kw):
    return publish_marts(settings, runtime.connection(settings, "tableau"), settings.warehouse_path, **kw)


def test_publish_twice_changes_nothing_then_an_edit_overwrites_in_place(tab):
    settings, running, made = tab
    emulator = running.emulator
    first = _publish(settings)
    assert first.ok and first.mismatches == [], first.summary()
    assert first.of("datasource").created == 3 and first.read_back == sum(made["tables"].values())
    sources = {d["name"]: d for d in emulator.datasources()}
    assert set(sources) == TABLES and {d["project"] for d in sources.values()} == {"Finance"}

    second = _publish(settings)
    assert second.ok and second.of("datasource").unchanged == 3 and second.writes == 0
    assert emulator.stats()["publishes"] == 3  # nothing re-published

    set_line_quantity(settings.warehouse_path, "INV-1004", 1, 3)
    third = _publish(settings)
    assert third.ok and third.mismatches == [], third.summary()
    assert third.of("datasource").updated == 2 and third.of("datasource").unchanged == 1
    after = {d["name"]: d for d in emulator.datasources()}
    assert len(after) == 3 and after["fct_invoices"]["id"] == sources["fct_invoices"]["id"]  # overwritten in place
    assert emulator.stats()["datasources_overwritten"] == 2
    check = check_read_back(settings, runtime.connection(settings, "tableau"), settings.warehouse_path)
    assert check.mismatches == [] and check.read_back == sum(made["tables"].values())


def test_large_extracts_go_up_in_chunks(tab):
    settings, running, _ = tab
    emulator = running.emulator
    emulator.max_single_request_bytes = 40_000  # stands for Tableau's 64 MB
    # without chunking the single request is refused as too large (413): nothing is published
    refused = _publish(settings, read_back=False, marts=["fct_invoice_lines"])
    assert refused.of("datasource").failed == 1 and "413" in refused.errors[0].message
    assert emulator.datasources() == []
    result = _publish(settings, chunk_threshold=40_000, chunk_size=16_384)
    assert result.ok and result.mismatches == [], result.summary()
    assert result.of("chunk").created >= 3 and emulator.stats()["chunks"] == result.of("chunk").created
    assert {d["name"] for d in emulator.datasources()} == TABLES


def test_one_session_per_token_and_sign_ins_are_serialised(tab):
    settings, running, _ = tab
    emulator = running.emulator
    connection = runtime.connection(settings, "tableau")
    first, second = tab_client.TableauAuth(connection), tab_client.TableauAuth(connection)
    try:
        first.sign_in()
        second.sign_in()  # the same PAT: the first session ends
        site = f"{first.api_url}/sites/{first.site_id}/projects"
        assert httpx.get(site, headers={"X-Tableau-Auth": first.token}).status_code == 401
        assert httpx.get(site, headers={"X-Tableau-Auth": second.token}).status_code == 200
    finally:
        first.close()
        second.close()
    # two publishers at once in one process: the PAT lock runs them one after the other, so neither
    # loses its session to the other's sign-in
    results = []
    threads = [threading.Thread(target=lambda: results.append(_publish(settings))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok for r in results), [r.summary() for r in results]
    assert sorted(r.of("datasource").created for r in results) == [0, 3]
    assert emulator.stats()["signins"] == 4 and len(emulator.datasources()) == 3


def test_a_value_hyper_refuses_is_quarantined_and_the_rest_published(tab):
    settings, running, made = tab
    # a fee total too wide for the extract's NUMERIC(18, 2)
    execute(settings.warehouse_path, "UPDATE marts.fct_payouts SET fees = 12345678901234567890.12 "
                                     "WHERE payout_id = 90000007")
    result = _publish(settings)
    assert result.of("row").failed == 1 and result.quarantined == 1
    (error,) = result.errors
    assert error.key.startswith("fct_payouts:") and "OverflowError" in error.message
    assert result.mismatches == []  # read back: the extract holds every other row
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    (reason,) = con.execute("SELECT reason FROM ops.quarantine WHERE platform = 'tableau'").fetchone()
    con.close()
    assert reason.startswith("Tableau (Hyper) refused the row")
    assert mart_count(settings.warehouse_path, "fct_payouts") == made["payouts"]


def test_the_server_validates_publishes(tab):
    settings, running, _ = tab
    creds = running.emulator.credentials()
    auth = tab_client.TableauAuth(runtime.connection(settings, "tableau"))
    try:
        auth.sign_in()
        headers = {"X-Tableau-Auth": auth.token, "Accept": "application/json"}
        base = f"{auth.api_url}/sites/{auth.site_id}"
        projects = httpx.get(f"{base}/projects", headers=headers, params={"filter": "name:eq:Finance"}).json()
        project = projects["projects"]["project"][0]["id"]

        def publish(name, data, filename, params):
            body, ctype = multipart([("request_payload", None, "text/xml", request_payload(name, project)),
                                     ("tableau_datasource", filename, "application/octet-stream", data)])
            return httpx.post(f"{base}/datasources", params=params, content=body,
                              headers={**headers, "Content-Type": ctype})

        not_hyper = publish("x", b"PK\x03\x04 not a hyper file", "x.hyper", {"datasourceType": "hyper"})
        assert not_hyper.status_code == 400 and "Hyper" in not_hyper.json()["error"]["detail"]
        wrong_ext = publish("x", b"Hyper\x08", "x.tdsx", {"datasourceType": "hyper"})
        assert wrong_ext.status_code == 400
        assert publish("x", b"Hyper\x08", "x.hyper", {"datasourceType": "hyper"}).status_code == 201
        again = publish("x", b"Hyper\x08", "x.hyper", {"datasourceType": "hyper"})  # no overwrite: conflict
        assert again.status_code == 409 and again.json()["error"]["code"] == "409004"
        both = publish("x", b"Hyper\x08", "x.hyper", {"datasourceType": "hyper", "overwrite": "true",
                                                       "append": "true"})
        assert both.status_code == 400
        ds = httpx.get(f"{base}/datasources", headers=headers, params={"filter": "name:eq:x"}).json()
        ds_id = ds["datasources"]["datasource"][0]["id"]
        refresh = httpx.post(f"{base}/datasources/{ds_id}/refresh", headers=headers, content=b"<tsRequest/>")
        assert refresh.status_code == 409  # a published .hyper has no connection to refresh from
        xml = httpx.get(f"{base}/projects", headers={"X-Tableau-Auth": auth.token})
        assert xml.headers["content-type"].startswith("application/xml") and "<tsResponse" in xml.text
    finally:
        auth.close()
    bad = httpx.post(f"{creds['server_url']}/api/3.27/auth/signin", json={"credentials": {
        "personalAccessTokenName": creds["pat_name"], "personalAccessTokenSecret": "wrong",
        "site": {"contentUrl": creds["site"]}}}, headers={"Accept": "application/json"})
    assert bad.status_code == 401


def test_dry_run_and_missing_credentials(tab, monkeypatch):
    settings, running, _ = tab
    result = _publish(settings, dry_run=True)
    assert result.dry_run["would_send"] == {"datasource.publish .hyper (overwrite=true)": 3}
    assert running.emulator.counters["requests"] == 0
    monkeypatch.setattr(tab_client, "env", lambda name, default=None: default)
    with pytest.raises(SettingsError, match="TABLEAU_SERVER_URL, TABLEAU_PAT_NAME, TABLEAU_PAT_SECRET"):
        tab_client.live_connection(make_settings(settings.data_dir, mode="live"))


def test_injected_faults_lose_or_double_nothing(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_bi_marts(settings.warehouse_path, n_invoices=60, n_payouts=80)
    # timeouts left out (a publish allows itself 5 s); "500 after commit" stands for a lost answer
    running = serve(TableauEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(
        time_scale=settings.time_scale, fault_rate=0.1, fault_seed=9,
        read_faults=("429", "500", "503", "truncate"), write_faults=("429", "503", "500_after_commit"))))
    runtime.write_endpoints(settings, {"tableau": running})
    try:
        for _ in range(3):
            result = _publish(settings, chunk_threshold=20_000, chunk_size=16_384)
            if result.ok:
                break
        assert result.ok and result.mismatches == [], result.summary()
        assert sum(running.emulator.faults.values()) > 0
        assert sorted(d["name"] for d in running.emulator.datasources()) == sorted(made["tables"])
    finally:
        running.stop()
