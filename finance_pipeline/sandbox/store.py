"""Where the sandbox lives on disk (`data/sandbox/`), so every process sees the same world.

- `state.json`: seed, size and the clock.  Written atomically; the clock moves only when told.
- `world-<key>.duckdb`: the generated truth tables, an indexed store the emulators page from
  (opened read-only by any number of processes).  Regenerated with a longer horizon when the
  clock gets close to the end of what was generated; generation is deterministic, so the part
  already seen does not change.
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from finance_pipeline.sandbox.world import INITIAL_CLOCK, UTC, WorldBuilder, WorldSpec

HORIZON_DAYS = 120  # generate this far past the clock
REBUILD_MARGIN_DAYS = 30  # regenerate when the clock is closer than this to the horizon


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write-then-rename, fsynced: a crash leaves either the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass
class SandboxState:
    seed: int
    size: int
    clock: datetime

    def to_json(self) -> bytes:
        return json.dumps({"seed": self.seed, "size": self.size, "clock": self.clock.isoformat()}, indent=2).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "SandboxState":
        d = json.loads(raw)
        return cls(int(d["seed"]), int(d["size"]), datetime.fromisoformat(d["clock"]).astimezone(UTC))


def _arrow_table(rows: list[dict[str, Any]]) -> pa.Table:
    if not rows:
        return pa.table({})
    keys = list(dict.fromkeys(k for r in rows for k, v in r.items() if not isinstance(v, (list, tuple, dict))))
    columns = {}
    for k in keys:
        values = [r.get(k) for r in rows]
        sample = next((v for v in values if v is not None), None)
        if isinstance(sample, Decimal):
            precise = k in ("fx_rate", "gbp_per_unit", "rate", "exchange_rate", "discount_pct") or k.endswith("_rate")
            scale = 6 if precise else 2
            columns[k] = pa.array(values, type=pa.decimal128(18, scale))
        elif isinstance(sample, datetime):
            # platforms report whole seconds; so does the world
            values = [v.replace(microsecond=0) if v is not None else None for v in values]
            columns[k] = pa.array(values, type=pa.timestamp("us", tz="UTC"))
        elif isinstance(sample, date):
            columns[k] = pa.array(values, type=pa.date32())
        elif isinstance(sample, bool):
            columns[k] = pa.array(values, type=pa.bool_())
        elif isinstance(sample, int):
            columns[k] = pa.array(values, type=pa.int64())
        else:
            columns[k] = pa.array(values, type=pa.string() if sample is None or isinstance(sample, str) else None)
    return pa.table(columns)


INDEXES = {
    "shopify_orders": ["order_id", "created_at"],
    "shopify_order_lines": ["order_id"],
    "shopify_tax_lines": ["order_id"],
    "shopify_refunds": ["order_id"],
    "shopify_refund_lines": ["order_id"],
    "shopify_transactions": ["order_id"],
    "shopify_balance_transactions": ["payout_id"],
    "stripe_charges": ["created"],
    "stripe_balance_transactions": ["created", "payout_id"],
}


class Sandbox:
    """The sandbox on disk: state, clock and the world store."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.state_path = self.root / "state.json"
        self._state_cache: tuple[float, SandboxState] | None = None
        self._lock = threading.Lock()

    # -- state and clock ---------------------------------------------------------------------
    def exists(self) -> bool:
        return self.state_path.exists()

    def init(self, seed: int, size: int, clock: datetime | None = None, *, reset: bool = False) -> SandboxState:
        if self.exists() and not reset:
            state = self.state()
            if (state.seed, state.size) != (seed, size):
                raise ValueError(
                    f"the sandbox in {self.root} was made with seed={state.seed} size={state.size}; "
                    f"run `finance-pipeline sandbox reset --seed {seed} --size {size}` to start another world")
            return state
        state = SandboxState(seed, size, clock or INITIAL_CLOCK)
        atomic_write(self.state_path, state.to_json())
        self._state_cache = None
        return state

    def state(self) -> SandboxState:
        try:
            mtime = self.state_path.stat().st_mtime_ns
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"no sandbox in {self.root}: run `finance-pipeline sandbox init` (the main job does it for you)") from exc
        cached = self._state_cache
        if cached and cached[0] == mtime:
            return cached[1]
        state = SandboxState.from_json(self.state_path.read_bytes())
        self._state_cache = (mtime, state)
        return state

    @property
    def clock(self) -> datetime:
        return self.state().clock

    def advance(self, hours: float) -> SandboxState:
        with self._lock:
            state = self.state()
            state = SandboxState(state.seed, state.size, state.clock + timedelta(hours=hours))
            atomic_write(self.state_path, state.to_json())
            self._state_cache = None
        return state

    # -- world ----------------------------------------------------------------------------------
    def _spec_for(self, state: SandboxState) -> WorldSpec:
        """The horizon is quantised to 90-day steps so small clock moves reuse the same store."""
        need = state.clock.date() + timedelta(days=HORIZON_DAYS)
        base = date(2025, 1, 1)
        steps = -(-(need - base).days // 90)
        return WorldSpec(state.seed, state.size, base + timedelta(days=steps * 90))

    def world_path(self) -> Path:
        return self.root / f"world-{self._spec_for(self.state()).key}.duckdb"

    def ensure_world(self) -> Path:
        path = self.world_path()
        if path.exists():
            return path
        with self._lock:
            if path.exists():
                return path
            spec = self._spec_for(self.state())
            builder = WorldBuilder(spec)
            tables = builder.build()
            indexes = {**INDEXES, **builder.indexes}
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.unlink(missing_ok=True)
            con = duckdb.connect(str(tmp))
            try:
                for name, rows in tables.items():
                    if not rows:
                        raise ValueError(f"world table {name} has no rows: a channel must emit at least one")
                    arrow = _arrow_table(rows)  # noqa: F841 - referenced by name in SQL
                    con.execute(f"CREATE TABLE {name} AS SELECT * FROM arrow")
                    for col in dict.fromkeys(indexes.get(name, [])):
                        con.execute(f"CREATE INDEX idx_{name}_{col} ON {name} ({col})")
                con.execute("CHECKPOINT")
            finally:
                con.close()
            os.replace(tmp, path)
            for old in self.root.glob("world-*.duckdb"):
                if old != path:
                    old.unlink(missing_ok=True)
            return path

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the world (thread-safe use: one `.cursor()` per thread)."""
        return duckdb.connect(str(self.ensure_world()), read_only=True)
