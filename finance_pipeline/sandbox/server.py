"""The emulator base: one HTTP server per platform on 127.0.0.1, faithful paths, injectable faults.

A platform emulator subclasses `Emulator`, lists its routes and renders the sandbox world in the
platform's wire format.  The base provides:

- a Starlette app served by uvicorn in a background thread on a free loopback port;
- fault injection at `fault_rate` (429, 500/503, timeouts, truncated bodies, a page served
  twice, and for writes a 500 *after* the write was committed) — the situations a real client
  must survive;
- counters the tests read: requests served, requests refused for exceeding the platform's rate
  limit (`over_limit`), faults injected by kind;
- `PageCache`: list queries are computed once per (filters, clock) and paged by offset behind an
  opaque cursor, so deep pages cost no more than the first one.
"""
from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.client import json_default
from finance_pipeline.sandbox.store import Sandbox

READ_FAULTS = ("429", "500", "503", "timeout", "truncate", "duplicate_page")
WRITE_FAULTS = ("429", "503", "timeout_after_commit", "500_after_commit")


@dataclass
class EmulatorConfig:
    fault_rate: float = 0.0
    fault_seed: int = 7
    read_faults: Sequence[str] = READ_FAULTS
    write_faults: Sequence[str] = WRITE_FAULTS
    timeout_delay_s: float = 2.5  # a "timeout" fault holds the response this long
    time_scale: float = 1.0  # compresses per-minute rate limits and Retry-After values
    enforce_rate_limits: bool = True


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON answer; a `Decimal` becomes a JSON number with its exact digits (never via float)."""
    return Response(orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS, default=json_default), status_code=status,
                    headers=headers, media_type="application/json")


def oauth_client_credentials(form: dict, authorization: str) -> tuple[str | None, str | None]:
    """Client id and secret of an OAuth token request: from HTTP Basic when sent, else the form's
    `client_id` / `client_secret` (RFC 6749 §2.3.1 allows both)."""
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    if authorization.lower().startswith("basic "):
        try:
            client_id, _, client_secret = base64.b64decode(authorization[6:]).decode().partition(":")
        except ValueError:
            pass
    return client_id, client_secret


class PageCache:
    """Ordered result lists per query, paged by offset behind an opaque token."""

    def __init__(self, max_entries: int = 64, ttl_s: float = 600.0) -> None:
        self._entries: collections.OrderedDict[str, tuple[float, list]] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.ttl_s = ttl_s

    def get(self, key_parts: Iterable[Any], compute: Callable[[], list]) -> tuple[str, list]:
        key = hashlib.blake2b(repr(tuple(key_parts)).encode(), digest_size=12).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._entries.get(key)
            if hit and now - hit[0] < self.ttl_s:
                self._entries.move_to_end(key)
                return key, hit[1]
        result = compute()
        with self._lock:
            self._entries[key] = (now, result)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return key, result

    def lookup(self, key: str) -> list | None:
        with self._lock:
            hit = self._entries.get(key)
            return hit[1] if hit else None

    @staticmethod
    def token(key: str, offset: int, extra: dict | None = None) -> str:
        raw = orjson.dumps({"k": key, "o": offset, **(extra or {})})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def parse_token(token: str) -> dict:
        pad = "=" * (-len(token) % 4)
        return orjson.loads(base64.urlsafe_b64decode(token + pad))


class Emulator:
    """Base class of every platform emulator."""

    name = "emulator"
    # False: the server adds no real-time `Date` header, so an emulator can send the sandbox
    # clock's own (eBay clients read "now" from it to keep filters inside the API's windows).
    server_date_header = True

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        self.sandbox = sandbox
        self.config = config or EmulatorConfig()
        self.counters: collections.Counter[str] = collections.Counter()
        self.faults: collections.Counter[str] = collections.Counter()
        self._fault_rng = random.Random(self.config.fault_seed)
        self._fault_lock = threading.Lock()
        self._db_lock = threading.Lock()
        self.pages = PageCache()
        self.base_url = ""  # set when served

    # -- to implement ----------------------------------------------------------------------
    def routes(self) -> list[Route]:
        raise NotImplementedError

    def credentials(self) -> dict[str, str]:
        """What a client needs to connect (printed by `sandbox serve`)."""
        return {}

    def rate_limit(self, request: Request) -> Response | None:
        """Return a 429 response when the request exceeds the platform's limits (and count it)."""
        return None

    def fault_response(self, status: int) -> Response:
        return json_response({"error": "injected fault", "status": status}, status)

    def faults_apply(self, method: str, path: str) -> bool:
        return True

    # -- helpers for subclasses ------------------------------------------------------------
    @property
    def db(self):
        """A fresh read-only cursor on the world store (cheap: a few microseconds).

        Not cached per thread: a DuckDB cursor parked in a thread-local of a server pool thread
        is destroyed when that thread exits, and if that happens while the interpreter is
        shutting down its destructor cannot take the GIL and the process aborts ("FATAL:
        exception not rethrown", exit 134).  A cursor per use dies with the request instead."""
        path = self.sandbox.world_path()
        with self._db_lock:
            if getattr(self, "_con_path", None) != path:
                self._con = self.sandbox.connect()
                self._con_path = path
            return self._con.cursor()

    def refuse(self, response: Response) -> Response:
        self.counters["over_limit"] += 1
        return response

    def refuse_over(self, window: Any, too_many: Callable[[float], Response]) -> Response | None:
        """`rate_limit` for a platform with one sliding window of calls (`http.ratelimit.SlidingWindow`):
        a call over its allowance is answered by `too_many(seconds until a slot frees)` and counted,
        unless the config says limits are not enforced."""
        wait = window.try_acquire()
        if wait <= 0 or not self.config.enforce_rate_limits:
            return None
        return self.refuse(too_many(wait))

    def seed_digest(self, label: str, size: int) -> str:
        """A hex digest of `label` and the world's seed: credentials that stay the same for one world
        and differ for another."""
        return hashlib.blake2b(f"{label}:{self.sandbox.state().seed}".encode(), digest_size=size).hexdigest()

    @staticmethod
    def duplicate_page(request: Request) -> bool:
        return bool(request.scope.get("state", {}).get("duplicate_page"))

    # -- app and faults ------------------------------------------------------------------------
    def build_app(self) -> Starlette:
        control = [
            Route("/__sandbox/health", lambda r: json_response({"ok": True, "platform": self.name})),
            Route("/__sandbox/stats", lambda r: json_response(self.stats())),
        ]
        app = Starlette(routes=control + self.routes())
        return _FaultInjector(app, self)  # type: ignore[return-value]

    def stats(self) -> dict[str, Any]:
        return {"platform": self.name, "counters": dict(self.counters), "faults": dict(self.faults)}

    def pick_fault(self, method: str) -> str | None:
        rate = self.config.fault_rate
        if rate <= 0:
            return None
        with self._fault_lock:
            if self._fault_rng.random() >= rate:
                return None
            kinds = self.config.read_faults if method in ("GET", "HEAD") else self.config.write_faults
            return self._fault_rng.choice(list(kinds)) if kinds else None


class _FaultInjector:
    """Pure ASGI middleware: counts requests, injects faults, applies the platform's rate limit."""

    def __init__(self, app: Starlette, emulator: Emulator) -> None:
        self.app = app
        self.emulator = emulator

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        em = self.emulator
        method, path = scope["method"], scope["path"]
        if path.startswith("/__sandbox/"):
            await self.app(scope, receive, send)
            return
        em.counters["requests"] += 1
        kind = em.pick_fault(method) if em.faults_apply(method, path) else None
        if kind:
            em.faults[kind] += 1
        if kind in ("429", "500", "503"):
            resp = em.fault_response(int(kind))
            await resp(scope, receive, send)
            return
        if kind == "timeout":
            await asyncio.sleep(em.config.timeout_delay_s)
        if kind == "duplicate_page":
            scope.setdefault("state", {})["duplicate_page"] = True
        if kind in ("truncate", "500_after_commit", "timeout_after_commit"):
            captured: dict[str, Any] = {"body": b""}

            async def capture(message):  # noqa: ANN001
                if message["type"] == "http.response.start":
                    captured["start"] = message
                elif message["type"] == "http.response.body":
                    captured["body"] += message.get("body", b"")

            await self.app(scope, receive, capture)
            if kind == "500_after_commit":
                await em.fault_response(500)(scope, receive, send)
                return
            if kind == "timeout_after_commit":
                await asyncio.sleep(em.config.timeout_delay_s)
            body = captured["body"]
            start = captured["start"]
            if kind == "truncate" and len(body) > 2:
                body = body[: len(body) // 2]
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": start["status"], "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


@dataclass
class RunningEmulator:
    emulator: Emulator
    server: uvicorn.Server
    thread: threading.Thread
    url: str
    extra: dict = field(default_factory=dict)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(emulator: Emulator, port: int = 0) -> RunningEmulator:
    """Start `emulator` on 127.0.0.1 (a free port unless given) in a daemon thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(256)
    port = sock.getsockname()[1]
    emulator.base_url = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(emulator.build_app(), log_level="warning", access_log=False,
                            timeout_keep_alive=30, lifespan="off", date_header=emulator.server_date_header)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"emulator-{emulator.name}")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the {emulator.name} emulator did not start")
        time.sleep(0.01)
    return RunningEmulator(emulator, server, thread, emulator.base_url)
