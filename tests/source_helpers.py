"""What the channel source and client tests share: a fresh copy of the small world, one run of a
platform's dlt source against its emulator, reads of the warehouse and of the world's truth as of
the clock, a clean load beside a faulty one, and the checks every client test makes (live
credentials named one by one, eight threads under the platform's limit)."""
from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterable

import duckdb
import pytest

from conftest import make_settings
from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import Settings, SettingsError


def fresh(tmp_path: Path, small_world_dir: Path, **overrides: Any) -> tuple[Settings, Sandbox]:
    """A data dir at tmp_path whose sandbox is a copy of the small world (write to it freely)."""
    shutil.copytree(Path(small_world_dir) / "sandbox", Path(tmp_path) / "sandbox")
    settings = make_settings(tmp_path, **overrides)
    return settings, Sandbox(settings.sandbox_dir)


def load_source(settings: Settings, platform: str, make_source: Callable, running,
                quarantine: Quarantine | None = None):
    """One run of `make_source(connection, quarantine)` against a running emulator, into the warehouse."""
    quarantine = quarantine if quarantine is not None else Quarantine(platform)
    connection = Connection(platform, running.url, running.emulator.credentials(), settings)
    return run_platform(settings, platform, make_source(connection, quarantine), quarantine)


def query(settings: Settings, sql: str, params: Iterable = ()) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def counts_as_of(sandbox: Sandbox, counts: dict[str, str]) -> dict[str, int]:
    """{name: `select count(*) …` over the world, where $c is the sandbox clock}."""
    with sandbox.connect() as con:
        return {name: con.execute(sql, {"c": sandbox.clock}).fetchone()[0] for name, sql in counts.items()}


def loaded_counts(settings: Settings, counts: dict[str, str]) -> dict[str, int]:
    """{name: `select count(*) …` over the warehouse}, in one statement."""
    (row,) = query(settings, "select " + ", ".join(f"({sql})" for sql in counts.values()))
    return dict(zip(counts, row))


def raw_snapshot(settings: Settings, schema: str, tables: Iterable[str]) -> dict[str, list[tuple]]:
    """Every row of the raw tables, in an order that does not depend on the load."""
    return {t: sorted(query(settings, f"select * from {schema}.{t}"), key=str) for t in tables}


def no_duplicate_ids(settings: Settings, schema: str, tables: Iterable[str], key: str = "id") -> None:
    for t in tables:
        assert query(settings, f"select count(*) - count(distinct {key}) from {schema}.{t}") == [(0,)], t


def edit_and_refund_after_clock(sandbox: Sandbox, edits_sql: str, refunds_sql: str,
                                gap: timedelta) -> tuple:
    """Two orders placed after the clock, one edited and one refunded later, both changes more than
    `gap` after both orders were placed, so that a sync in between sees the orders but neither change.
    `edits_sql` gives (placed, edited at, order id) and `refunds_sql` (placed, refunded at, order id,
    refund id) for orders placed after `?` (the clock). Returns (the later placing, edited at, the
    edited order's id, refunded at, the refunded order's id, the refund's id)."""
    with sandbox.connect() as con:
        edits = con.execute(edits_sql, [sandbox.clock]).fetchall()
        refunds = con.execute(refunds_sql, [sandbox.clock]).fetchall()
    return next((max(e[0], r[0]), e[1], e[2], r[1], r[2], r[3]) for e in edits for r in refunds
                if min(e[1], r[1]) > max(e[0], r[0]) + gap)


def load_clean_and_faulty(tmp_path: Path, small_world_dir: Path, start_emulator, emulator_cls, load, *,
                          before_faulty: Callable[[], None] | None = None,
                          faulty_settings: dict[str, Any] | None = None,
                          **fault_config: Any) -> tuple[Settings, Settings, Any]:
    """Load one copy of the world from a clean emulator and another from one injecting faults
    (`fault_config`, e.g. fault_rate=0.10; a timeout is 1.5 s). Returns (clean settings, faulty
    settings, the faulty running emulator)."""
    clean_settings, clean_sandbox = fresh(tmp_path / "clean", small_world_dir)
    load(clean_settings, start_emulator(emulator_cls, clean_sandbox, time_scale=30))
    if before_faulty is not None:
        before_faulty()
    settings, sandbox = fresh(tmp_path / "faulty", small_world_dir, **(faulty_settings or {}))
    running = start_emulator(emulator_cls, sandbox, time_scale=30, timeout_delay_s=1.5, **fault_config)
    load(settings, running)
    return clean_settings, settings, running


def live_connection_after_each_missing(monkeypatch, settings: Settings, live_connection: Callable,
                                       steps: list[tuple[str, str, str]], unset: Iterable[str] = ()):
    """With none of the platform's variables set (`unset` and every step's) and no .env: each step
    (expected message, variable, value) is live_connection refusing with a SettingsError naming the
    message, then the variable set. Returns the connection made once every step is set."""
    for name in {*unset, *(var for _, var, _ in steps)}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(settings.data_dir)  # no .env here
    for message, var, value in steps:
        with pytest.raises(SettingsError, match=message):
            live_connection(settings)
        monkeypatch.setenv(var, value)
    return live_connection(settings)


def statuses_from_eight_threads(client, path: str, params: dict, n: int) -> list[int]:
    """n GETs of path from 8 threads at once; their HTTP statuses."""
    def call(_):
        return client.get(path, params=params).status

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(call, range(n)))
    client.close()
    return statuses
