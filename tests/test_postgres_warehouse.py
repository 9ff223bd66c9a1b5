"""The warehouse on a real PostgreSQL server (FINANCE_WAREHOUSE=postgres): the same dlt sources and dbt
models as on the embedded DuckDB, and every mart equal to the DuckDB run's, row for row, to the cent.

A server is started on a loopback port in a temporary directory (installed from the system's package
manager when missing and possible); the test is skipped, saying why, only when no server can be had."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from finance_pipeline.defs.transform import DBT_DIR
from finance_pipeline.platforms import registry
from finance_pipeline.settings import Settings, SettingsError
from pg_helpers import compare_schema, duck_tables, pg_server, pg_tables, run_on  # noqa: F401

pytestmark = pytest.mark.timeout(1500)


def test_every_mart_on_postgres_equals_duckdb(pg_server, tmp_path, small_world_dir):
    sources = {p.name for p in registry.sources()}
    duck_dir, pg_dir = tmp_path / "duck", tmp_path / "pg"
    for d in (duck_dir, pg_dir):
        shutil.copytree(small_world_dir / "sandbox", d / "sandbox")
    started = time.time()
    run_on(duck_dir, sources)
    database = pg_server.create_database("marts_equal")
    run_on(pg_dir, sources, pg_server, database)

    marts = duck_tables(duck_dir / "warehouse.duckdb", "marts")
    assert len(marts) >= 15 and set(marts) <= set(pg_tables(pg_server, database, "marts"))
    for schema in ("marts", "intermediate", "staging"):
        problems = compare_schema(duck_dir / "warehouse.duckdb", pg_server, database, schema)
        assert not problems, f"{schema} differs between DuckDB and Postgres: {problems}"
    # every source landed in its own raw schema on the server
    for name in sources:
        assert pg_tables(pg_server, database, f"raw_{name}"), name
    # the server's password reached neither dlt's state nor dbt's logs and artifacts
    checked = 0
    for root in (pg_dir, DBT_DIR / "target", DBT_DIR / "logs"):
        for path, text in _texts_written_since(root, started):
            assert pg_server.password not in text, path
            checked += 1
    assert checked > 0  # the run's manifests, run results and logs were read


def _texts_written_since(root: Path, started: float):
    """(path, text) of the text files under root written since `started`.  dbt's target folder is
    shared with the other test workers, whose parse folders come and go meanwhile: a file or folder
    that vanishes during the walk was not this run's and is passed over."""
    for folder, _, names in os.walk(root):  # os.walk skips a folder it can no longer list
        for name in names:
            path = Path(folder) / name
            if path.suffix not in (".json", ".log", ".yaml", ".toml", ".txt"):
                continue
            try:
                if path.stat().st_mtime >= started:
                    yield path, path.read_text(errors="replace")
            except FileNotFoundError:
                continue


def test_bad_warehouse_settings_name_the_setting(monkeypatch):
    monkeypatch.setenv("FINANCE_WAREHOUSE", "oracle")
    with pytest.raises(SettingsError, match="FINANCE_WAREHOUSE='oracle'"):
        Settings.from_env()
    monkeypatch.setenv("FINANCE_WAREHOUSE", "postgres")
    for name in ("FINANCE_PG_HOST", "FINANCE_PG_USER", "FINANCE_PG_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SettingsError, match="FINANCE_PG_HOST is not set"):
        Settings.from_env()
    monkeypatch.setenv("FINANCE_PG_HOST", "127.0.0.1")
    monkeypatch.setenv("FINANCE_PG_USER", "finance")
    with pytest.raises(SettingsError, match="FINANCE_PG_PASSWORD is not set"):
        Settings.from_env()
    monkeypatch.setenv("FINANCE_PG_PASSWORD", "s3cret-value")
    monkeypatch.setenv("FINANCE_PG_SSLMODE", "sometimes")
    with pytest.raises(SettingsError, match="FINANCE_PG_SSLMODE"):
        Settings.from_env()
    monkeypatch.setenv("FINANCE_PG_SSLMODE", "require")
    settings = Settings.from_env()
    assert "s3cret-value" not in repr(settings) and "s3cret-value" in settings.postgres.dsn()
    # the steps that still read the embedded file refuse, saying what to do, instead of reading an empty one
    with pytest.raises(SettingsError, match="FINANCE_WAREHOUSE=duckdb"):
        settings.warehouse_path
