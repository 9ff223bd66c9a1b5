"""Finding (or starting) the sandbox emulators, so nobody has to start services by hand.

`connection(settings, "shopify")` returns the base URL and credentials to use:

- live mode: the platform's `live_connection(settings)` (env / .env credentials);
- sandbox mode: the emulators of a running `finance-pipeline sandbox serve` (found through
  `data/sandbox/endpoints.json`), or, if none answers, emulators started in this process on
  free loopback ports.  Destination emulators keep their state under `data/sandbox/`, so
  emulators in different processes agree on what was posted.
"""
from __future__ import annotations

import json
import os
import threading
from typing import Any

import httpx

from finance_pipeline.platforms import registry
from finance_pipeline.platforms.base import Connection
from finance_pipeline.sandbox.server import EmulatorConfig, RunningEmulator, serve
from finance_pipeline.sandbox.store import Sandbox, atomic_write
from finance_pipeline.settings import Secret, Settings

_lock = threading.Lock()
_running: dict[tuple[str, str], RunningEmulator] = {}


def sandbox_for(settings: Settings) -> Sandbox:
    sandbox = Sandbox(settings.sandbox_dir)
    if not sandbox.exists():
        sandbox.init(settings.sandbox_seed, settings.sandbox_size)
    return sandbox


def emulator_config(settings: Settings) -> EmulatorConfig:
    return EmulatorConfig(fault_rate=settings.fault_rate, time_scale=settings.time_scale)


def start_emulators(settings: Settings, names: list[str] | None = None, ports: dict[str, int] | None = None
                    ) -> dict[str, RunningEmulator]:
    """Start emulators in this process (idempotent per data dir)."""
    sandbox = sandbox_for(settings)
    sandbox.ensure_world()
    out = {}
    with _lock:
        for platform in registry.PLATFORMS:
            if names and platform.name not in names:
                continue
            key = (str(settings.data_dir), platform.name)
            if key not in _running:
                cls = registry.Platform.load(platform.emulator)
                emulator = cls(sandbox, emulator_config(settings))
                _running[key] = serve(emulator, (ports or {}).get(platform.name, 0))
            out[platform.name] = _running[key]
    return out


def stop_emulators() -> None:
    with _lock:
        for running in _running.values():  # all told first: each server then exits on its own next tick
            running.server.should_exit = True
        for running in _running.values():
            running.stop()
        _running.clear()


def describe(running: dict[str, RunningEmulator]) -> list[dict[str, Any]]:
    return [{"platform": name, "base_url": r.url, "credentials": r.emulator.credentials()}
            for name, r in running.items()]


def write_endpoints(settings: Settings, running: dict[str, RunningEmulator]) -> None:
    payload = {"pid": os.getpid(), "emulators": describe(running)}
    atomic_write(settings.sandbox_dir / "endpoints.json", json.dumps(payload, indent=2).encode(), mode=0o600)


def _external_endpoints(settings: Settings) -> dict[str, dict] | None:
    path = settings.sandbox_dir / "endpoints.json"
    if not path.exists():
        return None
    try:
        payload = json.loads(path.read_text())
        os.kill(int(payload["pid"]), 0)
        found = {e["platform"]: e for e in payload["emulators"]}
        any_url = next(iter(found.values()))["base_url"]
        httpx.get(f"{any_url}/__sandbox/health", timeout=1.0)
        return found
    except (OSError, ValueError, KeyError, StopIteration, httpx.HTTPError):
        return None


def connection(settings: Settings, name: str) -> Connection:
    platform = registry.get(name)
    if settings.mode == "live":
        return registry.Platform.load(platform.live_connection)(settings)
    external = _external_endpoints(settings)
    if external and name in external:
        entry = external[name]
    else:
        # only this platform's emulator: a run that ingests one source (a webhook's) should not
        # pay for starting the other two dozen; the next platform's connection starts its own
        running = start_emulators(settings, names=[name])[name]
        entry = {"base_url": running.url, "credentials": running.emulator.credentials()}
    creds = {k: Secret(v, f"{name}.{k}") if isinstance(v, str) and _is_secret(k) else v
             for k, v in entry["credentials"].items()}
    return Connection(name, entry["base_url"], creds, settings)


def _is_secret(key: str) -> bool:
    if key.endswith("_url"):  # e.g. Xero's token_url: an address, not a credential
        return False
    return any(w in key for w in ("token", "secret", "key", "password"))
