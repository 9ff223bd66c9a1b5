"""kill -9 trials for any publisher: run `python -m <module> --data-dir DIR` in a subprocess, SIGKILL it
at a random moment, repeat, then let one run finish.

Two entry points: `run_trials` / `run_to_end` (kill a few moments after each trial's first write
lands at the destination, as the QuickBooks test uses them) and `kill_trials` (kill at a random
time after start, whatever the publisher is doing: reading marts, building files, writing).  The emulator runs in the test process and
the publishers find it through `data/sandbox/endpoints.json`, as any sandbox process does.

`after_kill(trial)` lets a test check its destination's invariants (no duplicate) after each kill.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb

from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import RunningEmulator
from finance_pipeline.settings import PROJECT_ROOT, Settings


@dataclass
class KillReport:
    killed_running: int = 0  # trials whose process was still running when killed
    finished_early: int = 0  # trials whose process ended before the kill came
    pending_seen: int = 0  # trials after which the ledger held pending keys (a write in flight)
    delays: list[float] = field(default_factory=list)
    final: dict = field(default_factory=dict)
    outputs: list[Path] = field(default_factory=list)

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.outputs if p.exists())


def pending_keys(warehouse: Path, destination: str) -> list[str]:
    if not warehouse.exists():
        return []
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return []
    try:
        return [r[0] for r in con.execute("SELECT business_key FROM ops.publish_ledger WHERE destination = ? AND "
                                          "status = 'pending'", [destination]).fetchall()]
    except duckdb.CatalogException:
        return []
    finally:
        con.close()


def _env(settings: Settings, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "FINANCE_MODE": "sandbox", "FINANCE_SANDBOX_TIME_SCALE": str(settings.time_scale),
           "FINANCE_HTTP_TIMEOUT_S": "5", "FINANCE_HTTP_MAX_ATTEMPTS": "10", "PYTHONPATH": str(PROJECT_ROOT),
           **(extra_env or {})}
    env.pop("FINANCE_DATA_DIR", None)
    env.pop("FINANCE_PUBLISH_DRY_RUN", None)
    return env


def _start(destination: str, settings: Settings, tmp_path: Path, n: int | str,
           extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, Path, Path]:
    out, err = tmp_path / f"{destination}-run{n}.out", tmp_path / f"{destination}-run{n}.err"
    cmd = [sys.executable, "-m", f"finance_pipeline.platforms.{destination}.publish", "--data-dir",
           str(settings.data_dir)]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=_env(settings, extra_env), stdout=out.open("wb"),
                            stderr=err.open("wb"))
    return proc, out, err


def run_trials(destination: str, settings: Settings, tmp_path: Path, *, trials: int, writes: Callable[[], int],
               max_wait_s: float = 1.5, seed: int = 7, first_write_timeout_s: float = 90
               ) -> list[tuple[float, int]]:
    """`trials` runs, each killed with SIGKILL a random 0..max_wait_s after its first write reached the
    destination (or when it ends by itself).  Returns (delay, writes during the trial) per trial.
    The caller has written endpoints.json for the emulator."""
    rng = random.Random(seed)
    out: list[tuple[float, int]] = []
    for trial in range(trials):
        before = writes()
        proc, _, err = _start(destination, settings, tmp_path, f"trial{trial}")
        deadline = time.monotonic() + first_write_timeout_s
        while writes() <= before and proc.poll() is None:
            assert time.monotonic() < deadline, f"no write in {first_write_timeout_s} s: {err.read_text()[-2000:]}"
            time.sleep(0.005)
        delay = rng.uniform(0, max_wait_s)
        until = time.monotonic() + delay
        while time.monotonic() < until and proc.poll() is None:
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        out.append((delay, writes() - before))
    return out


def run_to_end(destination: str, settings: Settings, tmp_path: Path, *, timeout_s: float = 180,
               extra_env: dict[str, str] | None = None) -> str:
    """One publisher run to its end; returns the summary line it printed (JSON)."""
    n = len(list(tmp_path.glob(f"{destination}-runend*.out")))
    proc, out, err = _start(destination, settings, tmp_path, f"end{n}", extra_env)
    code = proc.wait(timeout=timeout_s)
    assert code in (0, 1), f"{destination} publisher failed ({code}): {err.read_text()[-3000:]}"
    return out.read_text().strip().splitlines()[-1]


def kill_trials(tmp_path: Path, settings: Settings, running: RunningEmulator, destination: str, module: str, *,
                trials: int = 10, min_delay: float = 0.5, max_delay: float = 4.0, seed: int = 1,
                extra_env: dict[str, str] | None = None, progress: Callable[[], int] | None = None,
                after_kill: Callable[[int], None] | None = None, final_timeout: float = 120) -> KillReport:
    """`trials` runs, each SIGKILLed `min_delay..max_delay` s after it started — or, with `progress`
    (a destination counter), after that counter first moved in the trial, so the kill lands while
    the publisher is talking to the destination rather than while Python is still importing."""
    runtime.write_endpoints(settings, {destination: running})
    env = _env(settings, extra_env)
    cmd = [sys.executable, "-m", module, "--data-dir", str(settings.data_dir)]
    rng = random.Random(seed)
    report = KillReport()

    def start(n: int) -> subprocess.Popen:
        out, err = tmp_path / f"{destination}-run{n}.out", tmp_path / f"{destination}-run{n}.err"
        report.outputs += [out, err]
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out.open("wb"), stderr=err.open("wb"))

    for trial in range(trials):
        delay = rng.uniform(min_delay, max_delay)
        report.delays.append(round(delay, 2))
        before = progress() if progress is not None else 0
        proc = start(trial)
        if progress is not None:
            wait_until = time.monotonic() + 90
            while progress() <= before and proc.poll() is None:
                assert time.monotonic() < wait_until, "the publisher made no progress in 90 s"
                time.sleep(0.005)
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        code = proc.wait(timeout=30)
        if code == -signal.SIGKILL:
            report.killed_running += 1
        else:  # it finished on its own, possibly in the instant between the poll and the kill
            err = report.outputs[-1].read_text(errors="replace")
            assert code == 0, f"trial {trial} failed on its own ({code}): {err[-3000:]}"
            report.finished_early += 1
        if pending_keys(settings.warehouse_path, destination):
            report.pending_seen += 1
        if after_kill is not None:
            after_kill(trial)
    proc = start(trials)
    code = proc.wait(timeout=final_timeout)
    err = report.outputs[-1].read_text(errors="replace")
    assert code == 0, f"the final run failed ({code}): {err[-3000:]}"
    report.final = json.loads(report.outputs[-2].read_text().strip().splitlines()[-1])
    return report
