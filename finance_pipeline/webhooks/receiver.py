"""The webhook receiver: an ASGI app with one route per platform, `POST /webhooks/<platform>`.

For each delivery, in this order:
1. the platform's handshake hook, if it has one (subscription challenges);
2. size limit (413) and the platform's own signature check on the raw bytes — a forged, stale
   (the verifier checks the signed timestamp) or unsigned delivery gets the platform's reject
   status (401 by default) and an empty body, and nothing is stored;
3. the platform splits the delivery into events with their dedupe ids; a correctly signed body
   it cannot read is malformed (400);
4. the events are committed to the inbox (SQLite, or `ops.webhook_inbox` on the Postgres
   warehouse; durable, grouped with concurrent deliveries), and only then the answer is 200
   with an empty body.  A replayed event is answered 200 too (the sender must stop retrying)
   and only counted.  If the inbox cannot be written the answer is 503, so the platform retries.

Nothing platform-specific lives here: each platform's entry in the registry supplies the pieces
(`finance_pipeline.webhooks.endpoints`).  `GET /healthz` answers liveness, `GET /stats` counters.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from finance_pipeline.settings import Settings
from finance_pipeline.webhooks import endpoints as endpoints_mod
from finance_pipeline.webhooks.inbox import InboxEvent, InboxWriter, inbox_location, open_inbox_writer

log = logging.getLogger("finance_pipeline.webhooks")

MAX_BODY = 1 << 20  # 1 MiB; platforms send far less (Shopify caps payloads well below this)
PREFIX = "/webhooks/"
# headers kept with the raw event (topic, ids, signature: what a consumer may need to interpret or
# re-verify it) — all of them except credentials and connection plumbing
DROP_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "host", "connection", "content-length",
                          "accept-encoding", "transfer-encoding", "keep-alive"})


class WebhookReceiver:
    """The ASGI application."""

    def __init__(self, settings: Settings, endpoints: dict[str, endpoints_mod.Endpoint] | None = None,
                 writer: InboxWriter | None = None, public_url: str | None = None) -> None:
        self.settings = settings
        self.endpoints = endpoints if endpoints is not None else endpoints_mod.load(settings)
        self.writer = writer or open_inbox_writer(settings)
        from finance_pipeline.settings import env

        self.public_url = (public_url or env("FINANCE_WEBHOOK_PUBLIC_URL") or "").rstrip("/")
        self.counters: collections.Counter[str] = collections.Counter()

    # -- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/healthz":
            return await _answer(send, 200, orjson.dumps({"ok": True, "platforms": sorted(self.endpoints)}))
        if path == "/stats":
            return await _answer(send, 200, orjson.dumps(self.stats()))
        if not path.startswith(PREFIX):
            return await _answer(send, 404)
        name = path[len(PREFIX):].strip("/")
        ep = self.endpoints.get(name)
        if ep is None:
            return await _answer(send, 404)
        status, headers, body = await self.handle(ep, method, scope, receive)
        self.counters[f"{name}:{status}"] += 1
        await _answer(send, status, body, headers)

    async def handle(self, ep: endpoints_mod.Endpoint, method: str, scope, receive) -> tuple[int, list, bytes]:  # noqa: ANN001
        raw_headers = scope.get("headers") or []
        headers = _HeaderMap(raw_headers)
        body, too_big = await _read_body(receive)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if ep.handshake is not None:
            answer = ep.handshake(method, headers, body, query, ep.secret.value if ep.secret else "")
            if answer is not None:
                status, extra, payload = answer
                return status, [(k.encode(), v.encode()) for k, v in (extra or {}).items()], payload or b""
        if method != "POST":
            return 405, [(b"allow", b"POST")], b""
        if too_big:
            return 413, [], b""
        if ep.secret is None:
            return 503, [], b""
        # platforms that sign the notification URL get the public one when it is configured
        # (FINANCE_WEBHOOK_PUBLIC_URL); otherwise their verifier uses its own default
        kwargs = {"url": self.public_url + scope["path"]} if ep.wants_url and self.public_url else {}
        try:
            ok = ep.verify(headers, body, ep.secret.value, **kwargs)
        except Exception:  # noqa: BLE001 - a verifier choking on a hostile header is a rejection
            ok = False
        if not ok:
            return ep.reject_status, [], b""
        try:
            parts = ep.events(headers, body)
            events = [InboxEvent(ep.name, str(eid), topic, _kept_headers(raw_headers), raw)
                      for eid, topic, raw in parts]
            if any(not e.event_id or e.event_id == "None" for e in events):
                raise ValueError("event without an id")
        except Exception:  # noqa: BLE001 - signed but unreadable: malformed
            return 400, [], b""
        if not events:  # e.g. Xero Intent-to-Receive: correctly signed, nothing to keep
            return 200, [], b""
        try:
            new = await self._persist(events)
        except Exception:  # noqa: BLE001 - not stored means not acknowledged
            log.exception("inbox write failed")
            return 503, [(b"retry-after", b"5")], b""
        self.counters["events_new"] += sum(new)
        self.counters["events_replayed"] += len(new) - sum(new)
        return 200, [], b""

    async def _persist(self, events: list[InboxEvent]) -> list[bool]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()

        def done(result, error):  # noqa: ANN001 - runs on the writer thread
            def settle() -> None:
                if fut.done():
                    return
                if error is not None:
                    fut.set_exception(error)
                else:
                    fut.set_result(result)
            loop.call_soon_threadsafe(settle)

        self.writer.submit(events, done)
        return await fut

    def stats(self) -> dict[str, Any]:
        return {"counters": dict(self.counters), "commits": self.writer.commits, "written": self.writer.written}

    def close(self) -> None:
        self.writer.close()


class _HeaderMap(dict):
    """Request headers as a case-insensitive mapping (lower-case keys) that verifiers can
    `.get()` or iterate; repeated headers keep their first value."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        super().__init__()
        for k, v in raw:
            super().setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


def _kept_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    out = {}
    for k, v in raw:
        key = k.decode("latin-1").lower()
        if key in DROP_HEADERS:
            continue
        out.setdefault(key, v.decode("latin-1"))
    return out


async def _read_body(receive) -> tuple[bytes, bool]:  # noqa: ANN001
    chunks, size, too_big = [], 0, False
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            too_big = True
        elif chunk:
            chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks), too_big


async def _answer(send, status: int, body: bytes = b"", headers: list | None = None) -> None:  # noqa: ANN001
    hdrs = [(b"content-length", str(len(body)).encode())] + list(headers or [])
    if body:
        hdrs.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------------------------------ serving
@dataclass
class RunningReceiver:
    app: WebhookReceiver
    server: Any
    thread: threading.Thread | None
    url: str

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.app.close()


def _socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def _server(app: WebhookReceiver):
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30,
                            http="httptools", loop="uvloop")
    return uvicorn.Server(config)


def start(settings: Settings, port: int = 0, host: str = "127.0.0.1", **kwargs: Any) -> RunningReceiver:
    """Serve the receiver in a background thread (the demo and tests)."""
    sock = _socket(host, port)
    app = WebhookReceiver(settings, **kwargs)
    server = _server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="webhook-receiver")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the webhook receiver did not start")
        time.sleep(0.01)
    return RunningReceiver(app, server, thread, f"http://{host}:{sock.getsockname()[1]}")


def serve_forever(settings: Settings, port: int, host: str = "127.0.0.1", announce=print) -> None:  # noqa: ANN001
    """Serve in the foreground until SIGINT/SIGTERM (`finance-pipeline webhooks serve`)."""
    sock = _socket(host, port)
    app = WebhookReceiver(settings)
    url = f"http://{host}:{sock.getsockname()[1]}"
    missing = {n: ep.missing for n, ep in app.endpoints.items() if ep.missing}
    if settings.mode == "live" and missing and len(missing) == len(app.endpoints):
        from finance_pipeline.settings import SettingsError

        from finance_pipeline.platforms import registry

        names = [registry.get(n).webhook_secret_env or n for n in missing]
        raise SettingsError("no webhook signing secret is configured; set at least one of " + ", ".join(names))
    announce(orjson.dumps({"url": url, "inbox": inbox_location(settings),
                           "routes": {n: f"{url}{PREFIX}{n}" for n in sorted(app.endpoints)},
                           "disabled": missing}).decode())
    server = _server(app)
    try:
        server.run(sockets=[sock])
    finally:
        app.close()
