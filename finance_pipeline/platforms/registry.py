"""The list of platforms and what each provides.

A platform declares itself in `finance_pipeline/platforms/<name>/platform.py` as
`PLATFORM = Platform(...)`; this module finds those files, so adding a platform touches no shared
Python file.  Entries name their pieces by import path ("module:attribute"), which keeps importing
the registry cheap: nothing of a platform is imported until it is used.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class Platform:
    name: str
    title: str
    # "both": a ledger that is a sales channel (trade invoices raised in it) and a publish destination
    role: Literal["source", "destination", "both"]
    emulator: str  # "module:Class" of its sandbox emulator
    live_connection: str  # "module:function(settings) -> Connection" reading env credentials
    source: str | None = None  # "module:function(connection | None, quarantine | None) -> DltSource"
    webhook_verifier: str | None = None  # "module:function(headers, body, secret) -> bool"
    # Webhook receiver (finance_pipeline/webhooks/endpoints.py explains each; all optional):
    webhook_events: str | None = None  # "module:function(headers, body) -> [(event_id, topic, raw bytes)]"
    webhook_secret: str | None = None  # credential key of the signing secret (emulator / live connection)
    webhook_secret_env: str | None = None  # live mode: the variable holding the signing secret
    webhook_reject_status: int = 401  # answer to a delivery that fails verification
    webhook_handshake: str | None = None  # "module:function(method, headers, body, query, secret) -> answer|None"
    webhook_sample: str | None = None  # "module:function(secret, n, timestamp=None) -> (headers, body)"
    # Sandbox world and oracle of a sales channel (docs/architecture.md, "Channel kit"):
    world: str | None = None  # "module:function(ChannelWorld) -> dict[table, rows]"
    oracle: str | None = None  # "module:function(con, clock) -> oracle.Canonical"

    @property
    def is_source(self) -> bool:
        return self.role in ("source", "both")

    @property
    def is_destination(self) -> bool:
        return self.role in ("destination", "both")

    @staticmethod
    def load(ref: str) -> Any:
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)


def _discover() -> tuple[Platform, ...]:
    found: list[Platform] = []
    for path in sorted(Path(__file__).resolve().parent.glob("*/platform.py")):
        module = importlib.import_module(f"finance_pipeline.platforms.{path.parent.name}.platform")
        platform = getattr(module, "PLATFORM", None)
        if not isinstance(platform, Platform) or platform.name != path.parent.name:
            raise RuntimeError(f"{path} must define PLATFORM = Platform(name={path.parent.name!r}, ...)")
        found.append(platform)
    # sources before destinations, then by name: a stable order for ports, assets and summaries
    return tuple(sorted(found, key=lambda p: (not p.is_source, p.name)))


PLATFORMS: tuple[Platform, ...] = _discover()

BY_NAME = {p.name: p for p in PLATFORMS}


def sources() -> list[Platform]:
    return [p for p in PLATFORMS if p.is_source]


def get(name: str) -> Platform:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown platform {name!r}; known: {', '.join(BY_NAME)}") from None
