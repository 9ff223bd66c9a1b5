"""dbt models as Dagster assets; dbt tests become asset checks."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from finance_pipeline.defs.common import WAREHOUSE_POOL, as_of
from finance_pipeline.settings import PROJECT_ROOT, Settings, get_settings

DBT_DIR = PROJECT_ROOT / "dbt_project"
MANIFEST = DBT_DIR / "target" / "manifest.json"


def dbt_env(settings: Settings) -> dict[str, str]:
    """What dbt's profile reads (profiles.yml); the Postgres password goes in a DBT_ENV_SECRET_
    variable, which dbt scrubs from its logs."""
    values = {"FINANCE_WAREHOUSE_PATH": str(settings.duckdb_file), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    pg = settings.postgres
    if settings.warehouse == "postgres" and pg is not None:
        values.update({"FINANCE_PG_HOST": pg.host, "FINANCE_PG_PORT": str(pg.port), "FINANCE_PG_USER": pg.user,
                       "FINANCE_PG_DATABASE": pg.database, "FINANCE_PG_SSLMODE": pg.sslmode,
                       "DBT_ENV_SECRET_PG_PASSWORD": pg.password.value,
                       # libpq sets the session's time zone from PGTZ: timestamptz -> date casts cut
                       # days in UTC, as DuckDB's do (business days go through business_date())
                       "PGTZ": "UTC"})
    return values


def dbt_target(settings: Settings) -> list[str]:
    """`--target` for dbt: the profile's output named like the warehouse setting."""
    return ["--target", settings.warehouse]


def _newest_source_mtime() -> float:
    newest = (DBT_DIR / "dbt_project.yml").stat().st_mtime
    for folder in ("models", "macros", "seeds", "tests"):
        for path in (DBT_DIR / folder).rglob("*"):
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
    return newest


def ensure_manifest() -> Path:
    """Parse the dbt project when the manifest is missing or older than any project file.

    With every source on (the default) the manifest is `target/manifest.json`; a subset of sources
    (`FINANCE_SOURCES`, `ingest/switches.py`) parses with its channel list into a target folder of
    its own, so processes with different settings never overwrite each other's manifest.

    Several processes may ask at once (test workers, a run's step processes, the CLI): one parses
    under a file lock, into a private folder, and moves the manifest into place in one rename, so a
    reader sees the old file or the new one, never two writers' bytes interleaved."""
    import fcntl
    import hashlib
    import tempfile

    from finance_pipeline.ingest.switches import vars_json

    settings = get_settings()
    parsed_vars = vars_json(settings)
    manifest = MANIFEST
    args: list[str] = []
    if parsed_vars != "{}":
        manifest = DBT_DIR / "target" / f"sources-{hashlib.sha1(parsed_vars.encode()).hexdigest()[:12]}" / "manifest.json"
        args = ["--vars", parsed_vars]

    def fresh() -> bool:
        return manifest.exists() and manifest.stat().st_mtime >= _newest_source_mtime()

    if fresh():
        return manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(DBT_DIR / "target" / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if fresh():  # another process parsed while this one waited
            return manifest
        dbt = Path(sys.executable).with_name("dbt")
        env = {**os.environ, **dbt_env(settings)}
        with tempfile.TemporaryDirectory(dir=DBT_DIR / "target", prefix=".parse-") as work:
            subprocess.run([str(dbt), "parse", "--quiet", "--project-dir", str(DBT_DIR), "--profiles-dir",
                            str(DBT_DIR), "--target-path", work, "--log-path", work, *args],
                           check=True, env=env, cwd=DBT_DIR)
            os.replace(Path(work) / "manifest.json", manifest)
    return manifest


GROUPS = {"staging": "staging", "intermediate": "intermediate", "marts": "marts", "seeds": "reference"}


class FinanceDbtTranslator(DagsterDbtTranslator):
    """Keys are where things live in the warehouse: [schema, name].  Sources map onto the dlt
    assets' keys (["raw_<platform>", table]), so lineage runs from API to mart."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["schema"], dbt_resource_props["identifier"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or dbt_resource_props["schema"]
        return AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return GROUPS.get(fqn[1] if len(fqn) > 1 else "", "marts")


@dbt_assets(
    manifest=ensure_manifest(),
    dagster_dbt_translator=FinanceDbtTranslator(),
    pool=WAREHOUSE_POOL,
    name="dbt_models",
)
def dbt_models(context: AssetExecutionContext, dbt: DbtCliResource):
    settings = get_settings()
    os.environ.update(dbt_env(settings))
    from finance_pipeline.ingest.switches import dbt_vars

    yield from dbt.cli(["build", *dbt_target(settings),
                        "--vars", json.dumps(dbt_vars(settings, as_of=as_of(settings).isoformat()))],
                       context=context).stream()


def dbt_resource() -> DbtCliResource:
    # the dbt beside this interpreter, so it works without the virtualenv on PATH
    return DbtCliResource(project_dir=str(DBT_DIR), profiles_dir=str(DBT_DIR),
                          dbt_executable=str(Path(sys.executable).with_name("dbt")))
