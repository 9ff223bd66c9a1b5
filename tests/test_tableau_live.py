"""Tableau data sources connected live to the Postgres warehouse (FINANCE_WAREHOUSE=postgres): a .tds per
mart published with overwrite=true and the password embedded through the publish request only, the
extract created / refreshed by Tableau (the emulator really connects to the Postgres server with the
embedded credentials), a daily extract refresh task per data source, and the refreshed extract read
back and compared with the marts on Postgres.

The marts are a few small tables created directly in a `marts` schema on a real, throw-away server."""
from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal

import psycopg2
import pytest

from conftest import make_settings
from finance_pipeline.platforms.tableau import tds
from finance_pipeline.platforms.tableau.emulator import TableauEmulator
from finance_pipeline.platforms.tableau.live import publish_live
from finance_pipeline.platforms.tableau.publish import check_read_back, publish_marts
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import PostgresSettings, Secret, SettingsError
from pg_helpers import pg_server  # noqa: F401

pytestmark = pytest.mark.timeout(600)

MARTS = {"fct_invoices": 40, "fct_payouts": 25, "rpt_sales_trends": 12}
DDL = """
create schema marts;
create table marts.fct_invoices (invoice_number text, customer_id bigint, issued_on date, currency text,
    subtotal numeric(18,2), tax numeric(18,2), total numeric(18,2), status text);
create table marts.fct_payouts (channel text, payout_id bigint, arrival_at timestamptz, amount numeric(18,2),
    fees numeric(38,2), fx_rate double precision, reconciled boolean, note text);
create table marts.rpt_sales_trends (day date, orders integer, revenue numeric(18,2));
insert into marts.fct_invoices select 'INV-' || (1000 + i), i % 7, date '2025-01-01' + i, 'GBP',
    (i * 13.37)::numeric(18,2), (i * 2.67)::numeric(18,2), (i * 16.04)::numeric(18,2),
    case when i % 5 = 0 then 'paid' else 'open' end from generate_series(1, 40) i;
insert into marts.fct_payouts select case when i % 2 = 0 then 'stripe' else 'shopify' end, 90000000 + i,
    timestamptz '2025-02-01 09:30:00+00' + i * interval '1 day', (i * 101.01)::numeric(18,2),
    (i * 2.93)::numeric(38,2), 1.17, i % 4 <> 0, case when i % 3 = 0 then 'payout ' || i end
    from generate_series(1, 25) i;
insert into marts.rpt_sales_trends select date '2025-03-01' + i, i * 3, (i * 250.5)::numeric(18,2)
    from generate_series(1, 12) i;
"""


@pytest.fixture
def live(pg_server, tmp_path, request):  # noqa: F811
    database = pg_server.create_database(f"tableau_{request.node.name[5:30]}")
    con = psycopg2.connect(pg_server.dsn_for(database))
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(DDL)
    con.close()
    pg = PostgresSettings(host=pg_server.host, port=pg_server.port, user=pg_server.user,
                          password=Secret(pg_server.password, "FINANCE_PG_PASSWORD"), database=database,
                          sslmode="disable")
    settings = make_settings(tmp_path, warehouse="postgres", postgres=pg)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    running = serve(TableauEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    runtime.write_endpoints(settings, {"tableau": running})
    yield settings, running.emulator, pg_server.dsn_for(database), running
    running.stop()


def _run(settings, **kw):
    return publish_live(settings, runtime.connection(settings, "tableau"), poll_s=0.05, **kw)


def _sql(dsn: str, sql: str) -> None:
    con = psycopg2.connect(dsn)
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(sql)
    con.close()


def _ledger(dsn: str) -> tuple[dict[str, tuple[str, str]], int]:
    """Tableau's rows of ops.publish_ledger on the server ({mart: (status, data source id)}) and its log's size."""
    con = psycopg2.connect(dsn)
    try:
        with con.cursor() as cur:
            cur.execute("select business_key, status, remote_id from ops.publish_ledger "
                        "where destination = 'tableau' and object_type = 'datasource'")
            rows = {k: (status, remote) for k, status, remote in cur.fetchall()}
            cur.execute("select count(*) from ops.publish_log where destination = 'tableau'")
            return rows, cur.fetchone()[0]
    finally:
        con.close()


def test_publish_twice_one_data_source_per_mart_and_extracts_equal_the_marts(live):
    settings, emulator, dsn, _ = live
    # through the publisher's entry point: on Postgres it takes the live path (no DuckDB file)
    first = publish_marts(settings, runtime.connection(settings, "tableau"), None)
    assert first.ok and first.mismatches == [], first.summary()
    assert first.of("datasource").created == 3 and first.of("extract").created == 3
    assert first.of("refresh_task").created == 3 and first.read_back == sum(MARTS.values())
    sources = {d["name"]: d for d in emulator.datasources()}
    assert set(sources) == set(MARTS) and {d["type"] for d in sources.values()} == {"tds"}
    assert {m: emulator.extract_rows(m) for m in MARTS} == MARTS
    spec = tds.parse_tds((emulator.files / sources["fct_payouts"]["file"]).read_bytes())
    assert spec == {"server": settings.postgres.host, "port": settings.postgres.port,
                    "dbname": settings.postgres.database, "schema": "marts", "table": "fct_payouts",
                    "username": settings.postgres.user, "sslmode": "disable"}

    second = _run(settings)
    assert second.ok and second.mismatches == [], second.summary()
    assert second.of("datasource").unchanged == 3 and second.of("datasource").written == 0
    assert second.of("extract").updated == 3 and second.of("refresh_task").unchanged == 3
    after = {d["name"]: d for d in emulator.datasources()}
    assert {n: d["id"] for n, d in after.items()} == {n: d["id"] for n, d in sources.items()}
    tasks = emulator.tasks()
    assert len(tasks) == 3 and {t["datasource_id"] for t in tasks} == {d["id"] for d in after.values()}
    assert tasks[0]["schedule"]["frequency"] == "Daily" and tasks[0]["schedule"]["start"] == "06:00:00"
    assert emulator.stats()["publishes"] == 3
    # the data sources are in the publish ledger on the server, recorded once (nothing changed since)
    ledger, logged = _ledger(dsn)
    assert ledger == {n: ("done", d["id"]) for n, d in after.items()} and logged == 3

    # a forgotten state file: every data source is published again, over the same ids, never a second one
    (settings.secrets_dir / "tableau_live.json").unlink()
    third = _run(settings)
    assert third.ok and third.of("datasource").updated == 3 and third.of("extract").created == 3
    assert len(emulator.datasources()) == 3 and len(emulator.tasks()) == 3


def test_changed_marts_reach_the_extract_on_refresh_and_the_schedule_follows_the_setting(live, monkeypatch):
    settings, emulator, dsn, running = live
    assert _run(settings).ok
    _sql(dsn, "update marts.fct_payouts set amount = amount + 1000.01 where payout_id = 90000003; "
              "insert into marts.rpt_sales_trends values (date '2025-04-01', 9, 1234.56)")
    stale = check_read_back(settings, runtime.connection(settings, "tableau"), None)
    assert {(m.key, m.field) for m in stale.mismatches} == {("fct_payouts", "amount"), ("rpt_sales_trends", "rows"),
                                                            ("rpt_sales_trends", "revenue")}
    amount = next(m for m in stale.mismatches if m.field == "amount")
    assert amount.expected - amount.actual == Decimal("1000.01")

    monkeypatch.setenv("TABLEAU_REFRESH_AT", "05:30")
    fresh = _run(settings)
    assert fresh.ok and fresh.mismatches == [], fresh.summary()
    assert fresh.of("extract").updated == 3 and fresh.of("refresh_task").updated == 3
    assert emulator.extract_rows("rpt_sales_trends") == MARTS["rpt_sales_trends"] + 1
    assert {t["schedule"]["start"] for t in emulator.tasks()} == {"05:30:00"} and len(emulator.tasks()) == 3

    monkeypatch.setenv("TABLEAU_REFRESH_AT", "off")  # Tableau Server: an admin's server schedule instead
    off = _run(settings, read_back=False)
    assert off.ok and off.of("refresh_task").skipped == 3 and len(emulator.tasks()) == 3

    monkeypatch.setenv("TABLEAU_REFRESH_AT", "25:00")
    with pytest.raises(SettingsError, match="TABLEAU_REFRESH_AT='25:00'"):
        _run(settings)


def test_a_wrong_password_fails_that_job_with_the_servers_message_and_the_rest_publish(live):
    settings, emulator, *_ = live
    assert _run(settings).ok
    emulator.set_embedded_password("fct_payouts", "not-the-password")  # edited on Tableau's side
    broken = _run(settings)
    assert not broken.ok and broken.of("extract").failed == 1 and broken.of("extract").updated == 2
    (err,) = broken.errors
    assert err.key == "fct_payouts" and "password authentication failed" in err.message, err.message
    assert emulator.stats()["extract_jobs_failed"] == 1
    # the next run publishes that data source again with the pipeline's credentials: healed
    healed = _run(settings)
    assert healed.ok and healed.mismatches == [], healed.summary()
    assert healed.of("datasource").updated == 1 and healed.of("datasource").unchanged == 2
    assert len(emulator.datasources()) == 3

    # the pipeline's own password wrong: every job fails with the server's message, every mart is tried
    wrong = dataclasses.replace(settings.postgres, password=Secret("wrong-password-1", "FINANCE_PG_PASSWORD"))
    # (the publisher reads the mart list and writes the publish ledger with its own connection to the
    # warehouse, so give it the real credentials there: only what Tableau receives is wrong)
    import finance_pipeline.platforms.tableau.live as live_mod

    real = live_mod.open_warehouse
    live_mod.open_warehouse = lambda pg, read_only=False: real(settings.postgres, read_only=read_only)
    try:
        failed = _run(dataclasses.replace(settings, postgres=wrong), read_back=False)
    finally:
        live_mod.open_warehouse = real
    assert failed.of("datasource").updated == 3 and failed.of("extract").failed == 3
    assert all("password authentication failed" in e.message for e in failed.errors)
    assert len(emulator.datasources()) == 3


def test_the_password_is_in_no_tds_download_state_file_or_log(live, caplog):
    settings, emulator, *_ = live
    password = settings.postgres.password.value
    caplog.set_level(logging.DEBUG)
    assert _run(settings).ok
    assert _run(settings, dry_run=True).dry_run["would_send"]
    auth_files = [p for p in emulator.files.rglob("*") if p.is_file() and p.suffix in (".tds", ".tdsx")]
    assert len(auth_files) == 3
    for path in auth_files:
        assert password.encode() not in path.read_bytes(), path
    for path in settings.data_dir.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".log", ".txt", ".tds"):
            assert password not in path.read_text(errors="replace"), path
    # what anyone downloads from Tableau: the .tdsx (the .tds and the extract) holds no password
    import httpx

    from finance_pipeline.platforms.tableau.client import TableauAuth

    auth = TableauAuth(runtime.connection(settings, "tableau"))
    try:
        auth.sign_in()
        for ds in emulator.datasources():
            raw = httpx.get(f"{auth.api_url}/sites/{auth.site_id}/datasources/{ds['id']}/content",
                            headers={"X-Tableau-Auth": auth.token}).content
            assert password.encode() not in raw and b"postgres" in tds.read_tds(raw)
    finally:
        auth.close()
    assert password not in caplog.text and "tableau live publish" in caplog.text


def test_the_server_validates_live_data_sources_jobs_and_tasks(live):
    settings, emulator, *_ = live
    import httpx

    from finance_pipeline.platforms.tableau.client import TableauAuth
    from finance_pipeline.platforms.tableau.live import publish_payload
    from finance_pipeline.platforms.tableau.publish import multipart

    auth = TableauAuth(runtime.connection(settings, "tableau"))
    try:
        auth.sign_in()
        h = {"X-Tableau-Auth": auth.token, "Accept": "application/json"}
        base = f"{auth.api_url}/sites/{auth.site_id}"
        project = httpx.get(f"{base}/projects", headers=h, params={"filter": "name:eq:Finance"}).json()
        project = project["projects"]["project"][0]["id"]

        def publish(name, data, ctype="tds", creds=("finance", "x" * 8)):
            body, content_type = multipart([("request_payload", None, "text/xml",
                                             publish_payload(name, project, *creds)),
                                            ("tableau_datasource", f"{name}.{ctype}", "application/octet-stream",
                                             data)])
            return httpx.post(f"{base}/datasources", params={"datasourceType": ctype, "overwrite": "true"},
                              content=body, headers={**h, "Content-Type": content_type})

        no_pg = publish("x", b"<datasource><connection class='hyper' dbname='x.hyper'/></datasource>")
        assert no_pg.status_code == 400 and "no postgres connection" in no_pg.json()["error"]["detail"]
        remote = tds.build_tds("y", server="10.1.2.3", port=5432, dbname="finance", schema="marts",
                               table="fct_invoices", username="finance")
        ds = publish("y", remote).json()["datasource"]
        assert ds["hasExtracts"] == "false"
        refresh = httpx.post(f"{base}/datasources/{ds['id']}/refresh", headers=h, content=b"<tsRequest/>")
        assert refresh.status_code == 409  # live, no extract yet: createExtract first
        job = httpx.post(f"{base}/datasources/{ds['id']}/createExtract", headers=h).json()["job"]
        for _ in range(200):
            job = httpx.get(f"{base}/jobs/{job['id']}", headers=h).json()["job"]
            if "finishCode" in job:
                break
            import time

            time.sleep(0.05)
        assert job["finishCode"] == "1" and "loopback" in job["extractRefreshJob"]["notes"]

        def task(body):
            return httpx.post(f"{base}/tasks/extractRefreshes", headers={**h, "Content-Type": "text/xml"},
                              content=body)

        good = (f'<tsRequest><extractRefresh type="FullRefresh"><datasource id="{ds["id"]}"/></extractRefresh>'
                '<schedule frequency="Daily"><frequencyDetails start="06:00:00"><intervals><interval hours="24"/>'
                '<interval weekDay="Monday"/></intervals></frequencyDetails></schedule></tsRequest>')
        assert task(good).status_code == 201
        assert task(good.replace('"06:00:00"', '"6 am"')).status_code == 400
        assert task(good.replace('weekDay="Monday"', 'weekDay="Someday"')).status_code == 400
        assert task(good.replace(ds["id"], "00000000-0000-0000-0000-000000000000")).status_code == 404
        listed = httpx.get(f"{base}/tasks/extractRefreshes", headers=h).json()["tasks"]["task"]
        assert len(listed) == 1 and listed[0]["extractRefresh"]["datasource"]["id"] == ds["id"]
    finally:
        auth.close()


def test_injected_faults_lose_or_double_nothing(live):
    settings, emulator, *_ = live
    emulator.config = dataclasses.replace(emulator.config, fault_rate=0.15, fault_seed=4,
                                          read_faults=("429", "500", "503"),
                                          write_faults=("429", "503", "500_after_commit"))
    for _ in range(4):
        result = _run(settings)
        if result.ok:
            break
    assert result.ok and result.mismatches == [], result.summary()
    assert sum(emulator.faults.values()) > 0
    assert sorted(d["name"] for d in emulator.datasources()) == sorted(MARTS)
    assert len(emulator.tasks()) == 3 and {m: emulator.extract_rows(m) for m in MARTS} == MARTS


def test_kill_9_at_random_moments_then_rerun(live, tmp_path):
    """Ten kill -9s of the live publisher (publishing, waiting on a job, creating a task), then a clean
    run: one data source per mart, one refresh task per data source, extracts equal to the marts."""
    from collections import Counter

    from publish_kill import kill_trials

    settings, emulator, dsn, running = live
    pg = settings.postgres
    env = {"FINANCE_WAREHOUSE": "postgres", "FINANCE_PG_HOST": pg.host, "FINANCE_PG_PORT": str(pg.port),
           "FINANCE_PG_USER": pg.user, "FINANCE_PG_PASSWORD": pg.password.value, "FINANCE_PG_DATABASE": pg.database,
           "FINANCE_PG_SSLMODE": "disable"}

    def invariants(trial: int) -> None:
        names = Counter(d["name"] for d in emulator.datasources())
        assert all(n == 1 for n in names.values()), (trial, names)
        per_ds = Counter(t["datasource_id"] for t in emulator.tasks())
        assert all(n == 1 for n in per_ds.values()), (trial, per_ds)
        _sql(dsn, f"update marts.fct_payouts set note = 'after kill {trial}' where payout_id = 90000001")

    # the trials' own settings object reads no DuckDB ledger (there is none on Postgres)
    trial_settings = dataclasses.replace(settings, warehouse="duckdb", postgres=None)
    report = kill_trials(tmp_path, trial_settings, running, "tableau",
                         "finance_pipeline.platforms.tableau.publish", trials=10, min_delay=0.0, max_delay=1.2,
                         seed=3, after_kill=invariants, progress=lambda: emulator.counters["requests"],
                         extra_env=env)
    assert report.killed_running >= 6, report
    final = report.final
    assert final["ok"] and final["mismatch_count"] == 0, final
    assert final["read_back"] == sum(MARTS.values())
    assert sorted(d["name"] for d in emulator.datasources()) == sorted(MARTS) and len(emulator.tasks()) == 3
    assert {m: emulator.extract_rows(m) for m in MARTS} == MARTS
    assert pg.password.value not in report.logs()
