"""The sinks.  Each `send(event)` returns a remote id (Slack `ts`, SMTP Message-ID, HTTP status)
or raises `SinkError`; the caller (`deliver.py`) records the outcome in `ops.alert_deliveries`
and retries failures on the next evaluation.

Signed webhook format (documented in README, "Alerts"):
    POST <url>   Content-Type: application/json   body = the event as JSON
    Finance-Alert-Id:        the event id (stable across retries: dedupe on it)
    Finance-Alert-Timestamp: unix seconds when signed
    Finance-Alert-Signature: t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>
A receiver recomputes the HMAC over the raw body, compares in constant time and rejects
timestamps older than a few minutes.
"""
from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime
from datetime import datetime, timezone

from finance_pipeline.alerts.store import AlertEvent
from finance_pipeline.http.client import ApiClient, ApiError, RetryPolicy, dumps
from finance_pipeline.settings import Secret

EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


class SinkError(RuntimeError):
    pass


def headline(ev: AlertEvent) -> str:
    label = {"raised": "ALERT", "worsened": "WORSE", "reminder": "STILL OPEN", "resolved": "RESOLVED"}[ev.event]
    return f"[{label}] [{ev.severity}] {ev.title}"


def body_lines(ev: AlertEvent) -> list[str]:
    lines = [headline(ev), f"rule: {ev.rule}   key: {ev.dedupe_key}   as of: {ev.as_of:%Y-%m-%d %H:%M} UTC",
             f"alert id: {ev.alert_id}"]
    for k, v in ev.details.items():
        if isinstance(v, (list, dict)):
            continue
        lines.append(f"{k}: {v}")
    return lines


def sign_webhook(body: bytes, secret: str, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_webhook(headers, body: bytes, secret: str, tolerance_s: int = 300, now: float | None = None) -> bool:  # noqa: ANN001
    value = headers.get("finance-alert-signature") or headers.get("Finance-Alert-Signature") or ""
    parts = dict(p.split("=", 1) for p in value.split(",") if "=" in p)
    try:
        ts = int(parts.get("t", ""))
    except ValueError:
        return False
    expected = sign_webhook(body, secret, ts).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, parts.get("v1", "")):
        return False
    return ts >= (time.time() if now is None else now) - tolerance_s


@dataclass
class SlackSink:
    token: Secret
    channel: str
    api_url: str = "https://slack.com/api/"
    name: str = "slack"

    def send(self, ev: AlertEvent) -> str:
        from dagster_slack import SlackResource
        from slack_sdk.errors import SlackApiError
        from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

        client = SlackResource(token=self.token.value).get_client()
        client.base_url = self.api_url if self.api_url.endswith("/") else self.api_url + "/"
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=5))
        lines = body_lines(ev)
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"{EMOJI.get(ev.severity, '')} *{lines[0]}*"}},
                  {"type": "context", "elements": [{"type": "mrkdwn", "text": "\n".join(lines[1:])[:2900]}]}]
        try:
            answer = client.chat_postMessage(channel=self.channel, text=lines[0], blocks=blocks)
        except SlackApiError as exc:
            raise SinkError(f"slack: {exc.response.get('error') if exc.response else exc}") from None
        except Exception as exc:  # noqa: BLE001 - transport errors
            raise SinkError(f"slack: {type(exc).__name__}") from None
        return str(answer["ts"])

    def send_digest(self, events: list[AlertEvent]) -> str:
        """Many events in one message (Slack allows about one message per second per channel)."""
        from dagster_slack import SlackResource
        from slack_sdk.errors import SlackApiError
        from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

        client = SlackResource(token=self.token.value).get_client()
        client.base_url = self.api_url if self.api_url.endswith("/") else self.api_url + "/"
        client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=5))
        text = digest_title(events)
        listing = "\n".join(f"{EMOJI.get(e.severity, '')} {headline(e)}" for e in events)
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{text}*"}},
                  {"type": "section", "text": {"type": "mrkdwn", "text": listing[:2900]}}]
        try:
            answer = client.chat_postMessage(channel=self.channel, text=text, blocks=blocks)
        except SlackApiError as exc:
            raise SinkError(f"slack: {exc.response.get('error') if exc.response else exc}") from None
        except Exception as exc:  # noqa: BLE001
            raise SinkError(f"slack: {type(exc).__name__}") from None
        return str(answer["ts"])


def digest_title(events: list[AlertEvent]) -> str:
    counts: dict[str, int] = {}
    for e in events:
        counts[e.event] = counts.get(e.event, 0) + 1
    return f"{len(events)} alert events: " + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))


@dataclass
class EmailSink:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    username: str | None = None
    password: Secret | None = None
    starttls: bool = True
    timeout_s: float = 20.0
    name: str = "email"

    def send(self, ev: AlertEvent) -> str:
        return self._send(headline(ev), ev.alert_id, ev.severity, "\n".join(body_lines(ev)) + "\n")

    def send_digest(self, events: list[AlertEvent]) -> str:
        body = "\n\n".join("\n".join(body_lines(e)) for e in events) + "\n"
        worst = max((e.severity for e in events), key=lambda s: {"info": 0, "warning": 1, "critical": 2}.get(s, 0))
        return self._send(digest_title(events), "digest:" + "|".join(e.alert_id for e in events), worst, body)

    def _send(self, subject: str, alert_id: str, severity: str, text: str) -> str:
        msg = EmailMessage()
        msg["Subject"] = subject[:200]
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = format_datetime(datetime.now(timezone.utc))
        # stable per event: a retried send carries the same id, so mail clients can fold duplicates
        msg["Message-ID"] = f"<{hashlib.sha256(alert_id.encode()).hexdigest()[:32]}@finance-pipeline>"
        msg["X-Finance-Alert-Id"] = alert_id[:900]
        msg["X-Finance-Alert-Severity"] = severity
        msg.set_content(text)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                smtp.ehlo()
                if self.starttls and smtp.has_extn("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if self.username and self.password is not None:
                    smtp.login(self.username, self.password.value)
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:
            raise SinkError(f"email: {type(exc).__name__}: {getattr(exc, 'smtp_code', '')}") from None
        return msg["Message-ID"]


@dataclass
class WebhookSink:
    url: str
    secret: Secret
    timeout_s: float = 10.0
    name: str = "webhook"

    def send(self, ev: AlertEvent) -> str:
        payload = ev.payload()
        body = dumps(payload)
        ts = int(time.time())
        headers = {"Finance-Alert-Id": ev.alert_id, "Finance-Alert-Timestamp": str(ts),
                   "Finance-Alert-Signature": sign_webhook(body, self.secret.value, ts),
                   # the event id doubles as an idempotency key, which lets the shared client retry the POST
                   "Idempotency-Key": ev.alert_id}
        client = ApiClient("alert_webhook", self.url, retry=RetryPolicy(max_attempts=4), timeout_s=self.timeout_s)
        try:
            resp = client.request("POST", self.url, json=payload, headers=headers, expect_json=False)
        except ApiError as exc:
            raise SinkError(f"webhook: HTTP {exc.status}") from None
        finally:
            client.close()
        return str(resp.status)
