"""Dagster's own storage on a real PostgreSQL server (deploy/postgres/dagster.yaml).

A server is started on a loopback port in a temporary directory (installed from the system's
package manager when missing and possible); the test is skipped, saying why, only when no server
can be had at all."""
from __future__ import annotations

from dagster import DagsterInstance, asset, define_asset_job, Definitions

from pg_helpers import dagster_pg_env, pg_server, postgres_dagster_home  # noqa: F401


@asset
def probe() -> int:
    return 42


def test_runs_events_and_schedule_state_live_in_postgres(pg_server, tmp_path, monkeypatch):  # noqa: F811
    import psycopg2

    database = pg_server.create_database("dagster_storage")
    home = postgres_dagster_home(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for key, value in dagster_pg_env(pg_server, database).items():
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

    con = psycopg2.connect(pg_server.dsn_for(database))
    try:
        cur = con.cursor()
        cur.execute("select count(*) from runs where run_id = %s", (run_id,))
        assert cur.fetchone()[0] == 1
        cur.execute("select count(*) from event_logs where run_id = %s", (run_id,))
        assert cur.fetchone()[0] > 5
    finally:
        con.close()
    assert not any(p.name.endswith(".db") for p in home.rglob("*")), "nothing stored in local SQLite"
