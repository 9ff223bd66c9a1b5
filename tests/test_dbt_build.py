"""What keeps a dbt build cheap (docs/decisions.md, "dbt's cost per invocation"): every build starts
from a saved parse, table and column comments only on the marts."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

from finance_pipeline.defs.transform import (
    DBT_DIR,
    PARTIAL_PARSE,
    dbt_parse_args,
    dbt_run_env,
    ensure_manifest,
    saved_parse,
)
from finance_pipeline.settings import PostgresSettings, Secret, Settings, get_settings


def test_a_build_with_a_new_as_of_starts_from_the_saved_parse(tmp_path):
    """The arguments and environment of a build (another as-of moment than the parse had) let dbt
    reuse the parse `ensure_manifest` saved: it re-reads the files using FINANCE_AS_OF only."""
    settings = get_settings()
    manifest = ensure_manifest()
    target = tmp_path / "target"
    target.mkdir()
    shutil.copyfile(manifest.with_name(PARTIAL_PARSE), target / PARTIAL_PARSE)
    env = {**os.environ, **dbt_run_env(settings), "FINANCE_AS_OF": "2031-07-01T09:30:00+00:00",
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    dbt = Path(sys.executable).with_name("dbt")
    done = subprocess.run(
        [str(dbt), "parse", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR), "--target-path",
         str(target), "--log-path", str(tmp_path / "logs"), "--log-level", "debug", *dbt_parse_args(settings)],
        env=env, cwd=DBT_DIR, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Unable to do partial parsing" not in done.stdout, done.stdout[-3000:]
    assert "Partial parsing enabled" in done.stdout, done.stdout[-3000:]


def test_saved_parses_are_kept_per_connection_and_never_keyed_on_a_secret(tmp_path):
    a = Settings(data_dir=tmp_path / "a")
    b = Settings(data_dir=tmp_path / "b")
    assert saved_parse(a) == saved_parse(Settings(data_dir=tmp_path / "a"))
    assert saved_parse(a) != saved_parse(b)  # dbt refuses a parse saved for another profile
    assert saved_parse(a) != saved_parse(dataclasses.replace(a, mode="live", sources=("stripe",)))
    pg = PostgresSettings(host="db", port=5432, user="finance", password=Secret("one"), database="finance")
    on_pg = dataclasses.replace(a, warehouse="postgres", postgres=pg)
    assert saved_parse(on_pg) != saved_parse(a)
    other_password = dataclasses.replace(on_pg, postgres=dataclasses.replace(pg, password=Secret("two")))
    assert saved_parse(on_pg) == saved_parse(other_password)


def test_table_and_column_comments_only_on_the_marts():
    import json

    nodes = json.loads(ensure_manifest().read_text())["nodes"]
    models = [n for n in nodes.values() if n["resource_type"] == "model"]
    for node in models:
        persisted = node["config"].get("persist_docs") or {}
        if node["fqn"][1] == "marts":
            assert persisted == {"relation": True, "columns": True}, node["name"]
        else:
            assert not persisted.get("columns") and not persisted.get("relation"), node["name"]
    assert any(n["fqn"][1] == "marts" for n in models) and any(n["fqn"][1] == "staging" for n in models)
