"""Running the real Dagster jobs in-process against a data dir, and comparing marts with the oracle."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

import duckdb

from finance_pipeline.sandbox import oracle as oracle_mod
from finance_pipeline.sandbox.store import Sandbox

KEYS = {
    "fct_orders": ("channel", "order_id"),
    "fct_order_lines": ("channel", "line_id"),
    "fct_refunds": ("channel", "refund_id"),
    "fct_payments": ("channel", "payment_id"),
    "fct_payouts": ("channel", "payout_id"),
    "rpt_payout_reconciliation": ("channel", "payout_id"),
    "fct_invoices": ("invoice_number",),
    "rpt_outstanding_balances": ("customer_id",),
    "rpt_profit_and_loss": ("channel", "month"),
    "fct_gl_entries": ("entry_id", "account_code"),
    "rpt_tax_obligations": ("jurisdiction", "period"),
    "rpt_payment_status": ("channel", "order_id"),
    "rpt_sales_trends": ("grain", "period_start", "channel", "category"),
    "rpt_ar_invoice_detail": ("invoice_number",),
    "rpt_pipeline_to_cash": ("crm", "deal_id"),
}


@contextmanager
def pipeline_env(data_dir: Path, **settings: Any) -> Iterator[None]:
    """Point the pipeline (which reads settings from the environment at run time) at data_dir."""
    env = {
        "FINANCE_DATA_DIR": str(data_dir),
        "FINANCE_WAREHOUSE_PATH": str(Path(data_dir) / "warehouse.duckdb"),
        "FINANCE_SANDBOX_SEED": str(settings.pop("seed", 42)),
        "FINANCE_SANDBOX_SIZE": str(settings.pop("size", 2000)),
        "FINANCE_SANDBOX_TIME_SCALE": str(settings.pop("time_scale", 30)),
        "FINANCE_SANDBOX_FAULT_RATE": str(settings.pop("fault_rate", 0.0)),
        "FINANCE_HTTP_TIMEOUT_S": str(settings.pop("http_timeout_s", 1.0)),
        "FINANCE_HTTP_MAX_ATTEMPTS": str(settings.pop("http_max_attempts", 12)),
        **{k: str(v) for k, v in settings.items()},
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_job(data_dir: Path, job: str = "daily_close", sources: set[str] | None = None,
            keep: Callable[[tuple[str, ...]], bool] | None = None, **settings: Any):
    """Run a job in-process. `sources` runs it for those sources only (FINANCE_SOURCES at run time:
    the other sources' ingest assets are left out and dbt builds only their channels), which is
    all a test of one channel's marts needs, at a fraction of the cost. `keep` (an asset key's
    path -> bool) narrows the job's assets further."""
    from dagster import DagsterInstance

    from finance_pipeline.definitions import defs
    from finance_pipeline.ingest.switches import outside_sources

    selection = None
    if sources is not None or keep is not None:
        if sources is not None:
            settings["FINANCE_SOURCES"] = ",".join(sorted(sources))
        job_def = defs.resolve_job_def(job)
        keys = job_def.asset_layer.selected_asset_keys
        selection = [k for k in keys
                     if not (sources is not None and outside_sources(k, sources))
                     and (keep is None or keep(tuple(k.path)))]
    with pipeline_env(data_dir, **settings):
        with DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=True,
                                                                  asset_selection=selection)
    assert result.success
    return result


def channel_run(tmp_path_factory, small_world_dir: Path, channels: set[str], job: str = "hourly_sync",
                **settings: Any) -> Path:
    """A data dir holding a copy of the small world after one run of `job` for `channels` only
    (hourly_sync = ingest + dbt + alerts: all the marts need, without publishing)."""
    data = tmp_path_factory.mktemp("-".join(sorted(channels)) + "-run")
    shutil.copytree(Path(small_world_dir) / "sandbox", data / "sandbox")
    run_job(data, job=job, sources=set(channels), **settings)
    return data


def advanced_copy(run_dir: Path, dest: Path, hours: float) -> tuple[Sandbox, Any]:
    """A copy of a run's data dir at dest, its world advanced by `hours`: (its sandbox, the clock before)."""
    shutil.copytree(run_dir, dest)
    sandbox = Sandbox(dest / "sandbox")
    old = sandbox.clock
    sandbox.advance(hours=hours)
    return sandbox, old


def channel_emulator(run_dir: Path, channel: str, **settings: Any):
    """The emulator the pipeline ran against for run_dir (it stays up per data dir): its counters say
    what the runs asked of the platform."""
    from finance_pipeline.sandbox import runtime
    from finance_pipeline.settings import Settings

    with pipeline_env(run_dir, **settings):
        return runtime.start_emulators(Settings.from_env(), names=[channel])[channel].emulator


def summary_text(run_dir: Path, **settings: Any) -> str:
    """`finance-pipeline summary` for run_dir."""
    from finance_pipeline.cli import summary
    from finance_pipeline.settings import Settings

    with pipeline_env(run_dir, **settings):
        return summary(Settings.from_env())


def warehouse_rows(warehouse: Path, sql: str, params: Any = ()) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def mart_rows(warehouse: Path, mart: str) -> dict[Any, dict[str, Any]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        cur = con.execute(f"select * from marts.{mart}")
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()
    keys = KEYS[mart]
    out = {}
    for r in rows:
        key = tuple(str(r[k]) if k != "month" else r[k] for k in keys)
        out[key if len(key) > 1 else key[0]] = r
    return out


def _norm(v: Any) -> Any:
    if isinstance(v, Decimal):
        return v.quantize(Decimal("0.01"))
    if isinstance(v, float):
        raise AssertionError(f"float in a money column: {v!r}")
    return v


def row_differences(want: dict, got: dict, norm: Any = lambda v: v, limit: int = 20) -> list[str]:
    """What differs between oracle rows and mart rows keyed alike: missing and unexpected keys, then
    every column whose values differ after `norm` (at most `limit` lines)."""
    issues = []
    if set(want) != set(got):
        issues.append(f"keys: {len(set(want) - set(got))} missing {sorted(set(want) - set(got), key=str)[:3]}, "
                      f"{len(set(got) - set(want))} unexpected {sorted(set(got) - set(want), key=str)[:3]}")
    for key, row in want.items():
        have = got.get(key)
        for col, value in (row.items() if have else ()):
            if norm(have[col]) != norm(value):
                issues.append(f"{key} {col}: mart {have[col]!r} != oracle {value!r}")
    return issues[:limit]


def _mart_key(key: Any) -> Any:
    """An oracle key as `mart_rows` spells it: ids as text, dates (P&L months) as dates."""
    if not isinstance(key, tuple):
        return key
    return tuple(x if hasattr(x, "year") else str(x) for x in key)


def compare_with_oracle(warehouse: Path, sandbox: Sandbox, channels: set[str] | None = None,
                        expected: oracle_mod.Oracle | None = None) -> dict[str, list[str]]:
    """Every row of every mart the oracle knows, column by column, to the cent.

    `channels` limits the comparison to the rows of those channels (marts keyed by channel);
    `expected` is the oracle of the sandbox at its clock when the caller has computed it already."""
    expected = expected or oracle_mod.compute(sandbox)
    problems: dict[str, list[str]] = {}

    def wanted(key: Any) -> bool:
        return channels is None or not isinstance(key, tuple) or str(key[0]) in channels

    for mart, exp_rows in expected.marts.items():
        if mart not in KEYS:
            continue
        if channels is not None and KEYS[mart][0] != "channel":
            continue
        exp_rows = {k: v for k, v in exp_rows.items() if wanted(k)}
        got = {k: v for k, v in mart_rows(warehouse, mart).items() if wanted(k)}
        scope = expected.marts.get("_ledger_scope", {}).get(mart)  # channels the ledger oracle covers
        if scope is not None:
            got = {k: v for k, v in got.items() if v.get("channel") in scope}
        issues = []
        exp_keys = {_mart_key(k) for k in exp_rows}
        missing = exp_keys - set(got)
        extra = set(got) - exp_keys
        if missing:
            issues.append(f"{len(missing)} rows missing, e.g. {sorted(missing, key=str)[:3]}")
        if extra:
            issues.append(f"{len(extra)} unexpected rows, e.g. {sorted(extra, key=str)[:3]}")
        for k, exp in exp_rows.items():
            key = _mart_key(k)
            row = got.get(key)
            if row is None:
                continue
            for col, value in exp.items():
                if col not in row:
                    continue
                if _norm(row[col]) != _norm(value):
                    issues.append(f"{key} {col}: mart {row[col]!r} != oracle {value!r}")
                    if len(issues) > 20:
                        break
            if len(issues) > 20:
                break
        if issues:
            problems[mart] = issues
    return problems
