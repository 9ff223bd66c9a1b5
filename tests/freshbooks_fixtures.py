"""FreshBooks publish test support: the emulator on a loopback port (no world: a destination-only
sandbox), a connection through the sandbox path, and the counts of what it holds."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import make_settings
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.freshbooks.emulator import FreshBooksEmulator
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, RunningEmulator, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import Settings


@dataclass
class FbEnv:
    settings: Settings
    running: RunningEmulator

    @property
    def emulator(self) -> FreshBooksEmulator:
        return self.running.emulator  # type: ignore[return-value]

    @property
    def warehouse(self) -> Path:
        return self.settings.warehouse_path

    def connection(self) -> Connection:
        runtime.write_endpoints(self.settings, {"freshbooks": self.running})
        return runtime.connection(self.settings, "freshbooks")


def start_fb(settings: Settings, **config) -> RunningEmulator:
    config.setdefault("time_scale", settings.time_scale)
    return serve(FreshBooksEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(**config)))


@pytest.fixture
def fb_env(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    running = start_fb(settings)
    yield FbEnv(settings, running)
    running.stop()


def duplicates(emulator: FreshBooksEmulator) -> dict[str, list]:
    """Business keys held more than once among active documents (invoice numbers, client notes,
    payment notes)."""
    out = {}
    for kind, key in (("invoices", "invoice_number"), ("clients", "note"), ("payments", "note")):
        counts = Counter(d.get(key) for d in emulator.store.all(kind) if d.get("vis_state", 0) == 0)
        out[kind] = [k for k, n in counts.items() if n > 1]
    return out
