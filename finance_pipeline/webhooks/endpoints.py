"""What the receiver knows about each platform, read from its registry entry only.

A platform takes webhooks when its entry names a `webhook_verifier`; these optional fields say
the rest (see `finance_pipeline/platforms/registry.py`):

- `webhook_events`  "module:function(headers, body) -> [(event_id, topic, raw_event_bytes)]" —
  splits a verified delivery into events with their dedupe ids (a delivery may carry none, e.g.
  Xero's Intent-to-Receive probe, or several);
- `webhook_secret`  the credential key holding the signing secret (sandbox: the emulator's
  credentials, or a secret derived from the seed when the emulator has none; live: the platform's
  connection credentials), `webhook_secret_env` the variable it comes from in live mode;
- `webhook_reject_status` the status for a delivery that fails verification (default 401);
- `webhook_handshake` "module:function(method, headers, body, query, secret) -> (status, headers,
  body) | None" for subscription challenges answered before any verification;
- `webhook_sample` "module:function(secret, n, timestamp=None) -> (headers, body)": a delivery as
  the platform would send it (tests and the benchmark use it; never the receiver).

The verifier is called as `verify(headers, body, secret)`; verifiers that also need the public
URL of the endpoint (Square signs URL + body) declare a `url` keyword and receive it.
"""
from __future__ import annotations

import hashlib
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable

from finance_pipeline.platforms import registry
from finance_pipeline.settings import Secret, Settings, SettingsError, env

log = logging.getLogger("finance_pipeline.webhooks")


@dataclass
class Endpoint:
    name: str
    verify: Callable[..., bool]
    events: Callable[[Any, bytes], list[tuple[str, str | None, bytes]]]
    reject_status: int = 401
    handshake: Callable[..., Any] | None = None
    secret: Secret | None = None
    missing: str | None = None  # why there is no secret (answered 503 until configured)
    wants_url: bool = False
    sample: Callable[..., tuple[dict[str, str], bytes]] | None = None


def webhook_platforms() -> list[registry.Platform]:
    return [p for p in registry.PLATFORMS if p.webhook_verifier and getattr(p, "webhook_events", None)]


def sandbox_secret(settings: Settings, platform: registry.Platform) -> str:
    """The sandbox's signing secret for a platform: what its emulator hands out, or (when the
    emulator has none) a value derived from the world's seed, the same in every process."""
    key = platform.webhook_secret or "webhook_secret"
    try:
        from finance_pipeline.sandbox.runtime import sandbox_for

        sandbox = sandbox_for(settings)
        emulator = registry.Platform.load(platform.emulator)(sandbox)
        value = emulator.credentials().get(key)
        if value:
            return str(value)
        seed = sandbox.state().seed
    except (ImportError, AttributeError, FileNotFoundError):
        seed = settings.sandbox_seed
    return "whk_" + hashlib.blake2b(f"{platform.name}:webhook:{seed}".encode(), digest_size=20).hexdigest()


def live_secret(settings: Settings, platform: registry.Platform) -> Secret:
    var = platform.webhook_secret_env
    if var:
        value = env(var)
        if not value:
            raise SettingsError(f"{var} is not set: the {platform.title} webhook signing secret "
                                f"(set it in the environment or in .env).")
        return Secret(value, var)
    connection = registry.Platform.load(platform.live_connection)(settings)
    key = platform.webhook_secret or "webhook_secret"
    if key not in connection.credentials:
        raise SettingsError(f"the {platform.title} connection has no {key!r} credential for its webhooks.")
    return Secret(connection.secret(key), f"{platform.name}.{key}")


def load(settings: Settings, platforms: list[registry.Platform] | None = None,
         secrets: dict[str, str] | None = None) -> dict[str, Endpoint]:
    """Endpoints by platform name.  `secrets` overrides (tests).  A platform whose secret is
    missing in live mode is still listed, answering 503 and naming the variable in the log."""
    out = {}
    for p in platforms if platforms is not None else webhook_platforms():
        verify = registry.Platform.load(p.webhook_verifier)
        ep = Endpoint(
            name=p.name, verify=verify, events=registry.Platform.load(p.webhook_events),
            reject_status=getattr(p, "webhook_reject_status", 401) or 401,
            handshake=registry.Platform.load(p.webhook_handshake) if getattr(p, "webhook_handshake", None) else None,
            sample=registry.Platform.load(p.webhook_sample) if getattr(p, "webhook_sample", None) else None,
        )
        try:
            ep.wants_url = "url" in inspect.signature(verify).parameters
        except (TypeError, ValueError):
            ep.wants_url = False
        try:
            if secrets and p.name in secrets:
                ep.secret = Secret(secrets[p.name], f"{p.name}.webhook_secret")
            elif settings.mode == "live":
                ep.secret = live_secret(settings, p)
            else:
                ep.secret = Secret(sandbox_secret(settings, p), f"{p.name}.webhook_secret")
        except SettingsError as exc:
            ep.missing = str(exc)
            log.warning("webhooks for %s are not accepted: %s", p.name, exc)
        out[p.name] = ep
    return out
