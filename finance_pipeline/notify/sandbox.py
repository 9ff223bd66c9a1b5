"""Local receivers the sandbox's sinks point at, so tests and the demo see the real messages:

- the Slack Web API emulator (`finance_pipeline/sandbox/slack_emulator.py`);
- an SMTP server (aiosmtpd) that requires AUTH LOGIN/PLAIN with the sandbox's credentials and
  keeps each message as received;
- an HTTP endpoint for the signed alert webhook that verifies the signature as a consumer would
  (a bad one is refused with 401 and not kept).

Each appends what it accepted to `data/sandbox/notifications/<sink>.jsonl`.  Started on free
loopback ports, once per process and data dir.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.notify.sinks import verify_webhook
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, serve
from finance_pipeline.sandbox.slack_emulator import SlackEmulator
from finance_pipeline.settings import Settings

_lock = threading.Lock()
_running: dict[str, "LocalReceivers"] = {}


def notifications_dir(settings: Settings) -> Path:
    return settings.sandbox_dir / "notifications"


def read_log(settings: Settings, sink: str) -> list[dict[str, Any]]:
    path = notifications_dir(settings) / f"{sink}.jsonl"
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _append(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        f.write(orjson.dumps(record, default=str) + b"\n")


class AlertWebhookReceiver(Emulator):
    """What a consumer of the signed alert webhook runs: verify, then keep."""

    name = "alert-webhook"

    def __init__(self, sandbox, config: EmulatorConfig | None = None) -> None:  # noqa: ANN001
        super().__init__(sandbox, config)
        seed = sandbox.state().seed if sandbox.exists() else 0
        self.secret = "whk_alerts_" + hashlib.blake2b(f"alert-webhook:{seed}".encode(), digest_size=16).hexdigest()
        self.received: list[dict] = []
        self.log_path = sandbox.root / "notifications" / "webhook.jsonl"

    def credentials(self) -> dict[str, str]:
        return {"secret": self.secret}

    def routes(self) -> list[Route]:
        return [Route("/hooks/finance-alerts", self.receive, methods=["POST"])]

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        if not verify_webhook(request.headers, body, self.secret):
            return Response(status_code=401)
        record = {"alert_id": request.headers.get("finance-alert-id"), "payload": orjson.loads(body)}
        if any(r["alert_id"] == record["alert_id"] for r in self.received):
            return Response(status_code=200)  # a retry of something already kept
        self.received.append(record)
        _append(self.log_path, record)
        return Response(status_code=200)


class _SmtpHandler:
    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802 - aiosmtpd's hook name
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        record = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                  "subject": str(msg["Subject"]), "message_id": str(msg["Message-ID"]),
                  "alert_id": str(msg["X-Finance-Alert-Id"]), "body": msg.get_body(("plain",)).get_content(),
                  "authenticated_as": getattr(session, "auth_data", None) and session.auth_data.login.decode()}
        self.messages.append(record)
        _append(self.log_path, record)
        return "250 Message accepted for delivery"


@dataclass
class LocalReceivers:
    slack: Any
    webhook: Any
    smtp: Any
    smtp_handler: _SmtpHandler
    smtp_port: int
    smtp_user: str
    smtp_password: str

    def stop(self) -> None:
        self.slack.stop()
        self.webhook.stop()
        self.smtp.stop()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(settings: Settings) -> LocalReceivers:
    """The local receivers for this data dir (started once per process)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from finance_pipeline.sandbox.runtime import emulator_config, sandbox_for

    key = str(settings.data_dir)
    with _lock:
        if key in _running:
            return _running[key]
        sandbox = sandbox_for(settings)
        config = emulator_config(settings)
        slack = serve(SlackEmulator(sandbox, config))
        webhook = serve(AlertWebhookReceiver(sandbox, config))
        user = "alerts@curtains-sandbox.test"
        password = "smtp-" + hashlib.blake2b(f"smtp:{sandbox.state().seed}".encode(), digest_size=12).hexdigest()

        def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
            ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password
            return AuthResult(success=ok, auth_data=auth_data if ok else None)

        handler = _SmtpHandler(notifications_dir(settings) / "email.jsonl")
        port = _free_port()
        import warnings

        warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")  # loopback only
        smtp = Controller(handler, hostname="127.0.0.1", port=port, authenticator=authenticator,
                          auth_required=True, auth_require_tls=False)
        smtp.start()
        running = LocalReceivers(slack, webhook, smtp, handler, port, user, password)
        _running[key] = running
        return running


def stop_all() -> None:
    with _lock:
        for r in _running.values():
            r.stop()
        _running.clear()
