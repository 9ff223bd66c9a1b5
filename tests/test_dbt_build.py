"""What keeps a dbt build cheap (docs/decisions.md, "dbt's cost per invocation"): every build starts
from a saved parse, table and column comments only on the marts."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from finance_pipeline.defs.transform import (
    DBT_DIR,
    PARTIAL_PARSE,
    dbt_parse_args,
    dbt_run_env,
    ensure_manifest,
    prune_run_targets,
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


def test_old_run_target_folders_are_pruned_but_the_newest_and_the_young_stay(tmp_path):
    now = time.time()
    for i in range(30):  # dbt_models-<run id>-<invocation>, one an hour for 30 hours
        folder = tmp_path / f"dbt_models-{i:07x}-abcdef{i % 10}"
        (folder / "compiled").mkdir(parents=True)
        (folder / "manifest.json").write_text("{}")
        os.utime(folder, (now - i * 3600 - 60, now - i * 3600 - 60))
    for other in ("partial-parse", "parse-3d8b31ab4212", "docs"):  # shared folders are never touched
        (tmp_path / other).mkdir()
        os.utime(tmp_path / other, (now - 10**6, now - 10**6))
    assert prune_run_targets(tmp_path, keep=24, min_age_s=3600) == 6
    left = sorted(p.name for p in tmp_path.iterdir())
    assert len(left) == 24 + 3 and "dbt_models-0000017-abcdef3" in left and "dbt_models-0000018-abcdef4" not in left
    # a folder beyond `keep` but younger than min_age_s (an invocation still running) stays
    assert prune_run_targets(tmp_path, keep=0, min_age_s=3600) == 23
    assert [p.name for p in tmp_path.glob("dbt_models-*")] == ["dbt_models-0000000-abcdef0"]
