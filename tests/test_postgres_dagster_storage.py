"""Dagster's own storage on a real PostgreSQL server (deploy/postgres/dagster.yaml).

A server is started on a loopback port in a temporary directory (installed from the system's
package manager when missing and possible); the test is skipped, saying why, only when no server
can be had at all."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from dagster import DagsterInstance, asset, define_asset_job, Definitions

from finance_pipeline.devtools.postgres import PostgresUnavailable, local_postgres

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    try:
        with local_postgres(tmp_path_factory.mktemp("pg"), install=True) as pg:
            yield pg
    except PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL server on this machine: {exc}")


@asset
def probe() -> int:
    return 42


def test_runs_events_and_schedule_state_live_in_postgres(postgres, tmp_path, monkeypatch):
    import psycopg2

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "postgres" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for key, value in {"DAGSTER_PG_HOST": postgres.host, "DAGSTER_PG_PORT": str(postgres.port),
                       "DAGSTER_PG_USER": postgres.user, "DAGSTER_PG_PASSWORD": postgres.password,
                       "DAGSTER_PG_DB": postgres.database}.items():
        monkeypatch.setenv(key, value)

    job = Definitions(assets=[probe], jobs=[define_asset_job("probe_job")]).resolve_job_def("probe_job")
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        # the concurrency settings of the file are in force
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
        assert {"key": "finance/warehouse", "limit": 1} in limits
        result = job.execute_in_process(instance=instance)
        assert result.success
        run_id = result.run_id

    # a new instance (a restarted webserver) sees the run and its materialization
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(run_id).is_success
        assert instance.get_latest_materialization_event(probe.key) is not None

    con = psycopg2.connect(postgres.dsn)
    try:
        cur = con.cursor()
        cur.execute("select count(*) from runs where run_id = %s", (run_id,))
        assert cur.fetchone()[0] == 1
        cur.execute("select count(*) from event_logs where run_id = %s", (run_id,))
        assert cur.fetchone()[0] > 5
    finally:
        con.close()
    assert not any(p.name.endswith(".db") for p in home.rglob("*")), "nothing stored in local SQLite"
