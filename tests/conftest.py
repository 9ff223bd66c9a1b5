"""Shared fixtures.  Tests talk only to 127.0.0.1; every test gets its own data directory."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

from finance_pipeline.sandbox.server import EmulatorConfig, serve  # noqa: E402
from finance_pipeline.sandbox.store import Sandbox  # noqa: E402
from finance_pipeline.settings import Settings  # noqa: E402

SMALL_WORLD = 2_000  # orders in the first year: quick to build, holds every scenario


def make_settings(data_dir: Path, **overrides) -> Settings:
    base = Settings(data_dir=Path(data_dir), sandbox_seed=42, sandbox_size=SMALL_WORLD,
                    time_scale=30.0, http_timeout_s=1.0, http_max_attempts=10)
    return dataclasses.replace(base, **overrides)


@pytest.fixture(scope="session")
def small_world_dir(tmp_path_factory) -> Path:
    """A built small world, shared read-only by tests that only read it (copy it to write)."""
    root = tmp_path_factory.mktemp("small-world")
    sandbox = Sandbox(root / "sandbox")
    sandbox.init(42, SMALL_WORLD)
    sandbox.ensure_world()
    return root


@pytest.fixture
def settings(tmp_path, small_world_dir) -> Settings:
    """Fresh data dir whose sandbox is a copy of the small world (same clock, same truth)."""
    import shutil

    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    return make_settings(tmp_path)


@pytest.fixture
def sandbox(settings) -> Sandbox:
    return Sandbox(settings.sandbox_dir)


@pytest.fixture
def start_emulator():
    """start_emulator(EmulatorClass, sandbox, **config) -> RunningEmulator, stopped after the test."""
    running = []

    def start(cls, sandbox: Sandbox, **config):
        r = serve(cls(sandbox, EmulatorConfig(**config)))
        running.append(r)
        return r

    yield start
    for r in running:
        r.stop()
