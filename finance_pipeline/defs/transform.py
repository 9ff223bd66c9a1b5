"""dbt models as Dagster assets; dbt tests become asset checks."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from functools import cached_property
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import Any, Mapping

from dagster import AssetExecutionContext, AssetKey
from packaging.version import Version
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


PARTIAL_PARSE = "partial_parse.msgpack"


def dbt_parse_args(settings: Settings) -> list[str]:
    """What a parse and every build of these settings share: the target and the `--vars` of the
    enabled sources.  dbt reuses a saved parse (partial_parse.msgpack) only when both are the same
    as when it was saved, so nothing that changes from run to run goes in `--vars` (the as-of
    moment goes in FINANCE_AS_OF, `dbt_run_env`)."""
    from finance_pipeline.ingest.switches import vars_json

    parsed_vars = vars_json(settings)
    return [*dbt_target(settings), *(["--vars", parsed_vars] if parsed_vars != "{}" else [])]


def dbt_run_env(settings: Settings) -> dict[str, str]:
    """`dbt_env` plus the moment the marts are as of (the `as_of()` macro reads FINANCE_AS_OF
    unless a `--vars` as_of is given, as unit tests do)."""
    return {**dbt_env(settings), "FINANCE_AS_OF": as_of(settings).isoformat()}


def ensure_manifest() -> Path:
    """Parse the dbt project when the manifest is missing or older than any project file.

    With every source on (the default) and the DuckDB warehouse the manifest is
    `target/manifest.json`; other settings (a subset of sources, `FINANCE_SOURCES`,
    `ingest/switches.py`, or the Postgres target) parse with their own arguments into a target
    folder of their own, so processes with different settings never overwrite each other's
    manifest.  Beside the manifest lies dbt's saved parse (partial_parse.msgpack), which each build
    starts from (`dbt_models`) instead of parsing the whole project again.

    Several processes may ask at once (test workers, a run's step processes, the CLI): one parses
    under a file lock, into a private folder, and moves the files into place by rename, the
    manifest last, so a reader sees the old file or the new one, never two writers' bytes
    interleaved."""
    import fcntl
    import hashlib
    import tempfile

    settings = get_settings()
    args = dbt_parse_args(settings)
    manifest = MANIFEST
    if args != ["--target", "duckdb"]:  # the default: DuckDB, every source
        key = hashlib.sha1(" ".join(args).encode()).hexdigest()[:12]
        manifest = DBT_DIR / "target" / f"parse-{key}" / "manifest.json"

    def fresh() -> bool:
        return (manifest.exists() and manifest.with_name(PARTIAL_PARSE).exists()
                and manifest.stat().st_mtime >= _newest_source_mtime())

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
            os.replace(Path(work) / PARTIAL_PARSE, manifest.with_name(PARTIAL_PARSE))
            os.replace(Path(work) / "manifest.json", manifest)
    return manifest


SAVED_PARSES = DBT_DIR / "target" / "partial-parse"
KEEP_SAVED_PARSES = 8


def saved_parse(settings: Settings) -> Path:
    """Where the builds of these settings keep dbt's saved parse.  dbt reuses one only for the same
    target, `--vars` and connection (the DuckDB file, the Postgres server and database), so the key
    holds all three; secrets stay out of it."""
    import hashlib

    connection = {k: v for k, v in dbt_env(settings).items() if "SECRET" not in k}
    key = json.dumps([dbt_parse_args(settings), connection], sort_keys=True)
    return SAVED_PARSES / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.msgpack"


def run_target_path(context: AssetExecutionContext, settings: Settings, manifest: Path) -> Path:
    """A target folder for one dbt invocation (artifacts and dbt.log), seeded with a saved parse
    (the previous build's of these settings, else the one beside `manifest`), so that dbt re-reads
    only the files that changed since, or that use FINANCE_AS_OF, instead of parsing 185 models and
    445 tests again.  dbt checks a saved parse itself (file checksums, vars, target, profile,
    version) and parses in full when it does not fit."""
    import uuid

    path = DBT_DIR / "target" / f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}"
    path.mkdir(parents=True)
    for saved in (saved_parse(settings), manifest.with_name(PARTIAL_PARSE)):
        try:
            shutil.copyfile(saved, path / PARTIAL_PARSE)
            break
        except FileNotFoundError:
            continue
    return path


def keep_parse(settings: Settings, target_path: Path) -> None:
    """Keep the parse a build wrote for the next build of the same settings (atomic rename, so a
    concurrent reader sees a whole file); only the most recent few are kept."""
    written = target_path / PARTIAL_PARSE
    if not written.exists():
        return
    dest = saved_parse(settings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    shutil.copyfile(written, tmp)
    os.replace(tmp, dest)
    for old in sorted(dest.parent.glob("*.msgpack"), key=lambda p: p.stat().st_mtime, reverse=True)[KEEP_SAVED_PARSES:]:
        old.unlink(missing_ok=True)


KEEP_RUN_TARGETS = 24  # a day of hourly builds
RUN_TARGET = re.compile(r"^[a-z0-9_]+-[0-9a-f]{7}-[0-9a-f]{7}$")


def prune_run_targets(target_dir: Path = DBT_DIR / "target", keep: int = KEEP_RUN_TARGETS,
                      min_age_s: float = 3600.0) -> int:
    """Each dbt invocation writes its own target folder (about 8 MB: manifest, compiled SQL,
    run_results.json, dbt.log), which nothing reads once the step has streamed its events.  Left
    alone they fill the disk (an hourly schedule writes ~190 MB a day), so only the newest `keep`
    stay for a diagnosis; a folder younger than `min_age_s` is never removed (it may belong to an
    invocation still running).  Returns how many folders were removed."""
    now = time.time()
    folders = []
    for path in target_dir.iterdir():
        if path.is_dir() and RUN_TARGET.match(path.name):
            try:
                folders.append((path.stat().st_mtime, path))
            except FileNotFoundError:  # pruned by another process meanwhile
                continue
    removed = 0
    for mtime, path in sorted(folders, reverse=True)[keep:]:
        if now - mtime >= min_age_s:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


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
    os.environ.update(dbt_run_env(settings))
    target_path = run_target_path(context, settings, ensure_manifest())
    try:
        yield from dbt.cli(["build", *dbt_parse_args(settings), *dbt_build_flags(), *dbt_scope(context)],
                           context=context, target_path=target_path).stream()
    finally:
        keep_parse(settings, target_path)
        prune_run_targets()


def dbt_scope(context: AssetExecutionContext) -> list[str]:
    """What a webhook-triggered run leaves out: dbt's unit tests.  They check model SQL against
    fixed rows, so their outcome depends on the code alone, which is the code the scheduled runs
    (hourly_sync, daily_close) test in full; every data test of the models a webhook run builds
    still runs (docs/decisions.md)."""
    if context.run.tags.get("finance/trigger") == "webhook":
        return ["--exclude", "test_type:unit"]
    return []


def dbt_build_flags() -> list[str]:
    """dbt.log at info level (what stdout carries, which the step's compute log keeps too) rather
    than dbt's default debug, which writes every statement's events (~15 MB a build).
    DBT_LOG_LEVEL_FILE=debug in the environment brings the full log back for a diagnosis."""
    return ["--log-level-file", os.environ.get("DBT_LOG_LEVEL_FILE") or "info"]


class FinanceDbtCli(DbtCliResource):
    """DbtCliResource without two things dagster-dbt does in the step's own process before each
    invocation (3-10 s of every dbt step on the bench machine, docs/decisions.md):

    - `dbt --version` in a subprocess (a whole dbt start-up) to learn the version: the executable is
      the one installed beside this interpreter (`dbt_resource`), so the dbt-core distribution's
      version is the answer;
    - loading dbt's project, profile and adapter, a handle that serves only `fetch_row_counts()` /
      `fetch_column_metadata()`, which `dbt_models` does not call.  Without it dagster-dbt streams
      the same events."""

    @cached_property
    def _cli_version(self) -> Version:
        return Version(distribution_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):  # noqa: ANN001, ANN202 - dagster-dbt's signature
        return None


def dbt_resource() -> DbtCliResource:
    # the dbt beside this interpreter, so it works without the virtualenv on PATH
    return FinanceDbtCli(project_dir=str(DBT_DIR), profiles_dir=str(DBT_DIR),
                         dbt_executable=str(Path(sys.executable).with_name("dbt")))
