"""Which sinks alerts go to, and their credentials.

| sink | live mode: enabled when … is set | other variables |
|---|---|---|
| slack | `SLACK_BOT_TOKEN` (xoxb-…, scope chat:write) | `FINANCE_SLACK_CHANNEL` (default `#finance-alerts`), `FINANCE_SLACK_API_URL` (default `https://slack.com/api/`) |
| email | `FINANCE_SMTP_HOST` | `FINANCE_SMTP_PORT` (587), `FINANCE_SMTP_USER`, `FINANCE_SMTP_PASSWORD`, `FINANCE_SMTP_STARTTLS` (true), `FINANCE_ALERT_EMAIL_FROM`, `FINANCE_ALERT_EMAIL_TO` (comma-separated, required) |
| webhook | `FINANCE_ALERT_WEBHOOK_URL` | `FINANCE_ALERT_WEBHOOK_SECRET` (required: the HMAC key) |

`FINANCE_ALERT_SINKS` (comma-separated, or `none`) picks sinks explicitly; a sink named there
whose required variable is missing stops with a message naming it.  In sandbox mode, sinks not
configured point at local receivers (a Slack API emulator, an SMTP server, a webhook endpoint)
started in this process; `FINANCE_ALERT_SINKS=none` switches them off.  The `ops.alerts` table and
the Dagster UI always get every alert.
"""
from __future__ import annotations

from finance_pipeline.notify.sinks import EmailSink, SlackSink, WebhookSink
from finance_pipeline.settings import Secret, Settings, SettingsError, env, require_secret

ALL = ("slack", "email", "webhook")
MAX_ATTEMPTS = 5  # a delivery failing this many evaluations in a row is given up (status 'failed')


def wanted() -> tuple[str, ...] | None:
    raw = env("FINANCE_ALERT_SINKS")
    if raw is None or not raw.strip():
        return None
    if raw.strip().lower() == "none":
        return ()
    names = tuple(dict.fromkeys(x.strip().lower() for x in raw.split(",") if x.strip()))
    unknown = [n for n in names if n not in ALL]
    if unknown:
        raise SettingsError(f"FINANCE_ALERT_SINKS: unknown sink(s) {', '.join(unknown)}; known: {', '.join(ALL)}")
    return names


def _live(name: str, explicit: bool) -> object | None:
    if name == "slack":
        if not explicit and not env("SLACK_BOT_TOKEN"):
            return None
        token = require_secret("SLACK_BOT_TOKEN", "A Slack bot token (xoxb-…) with the chat:write scope")
        return SlackSink(token, env("FINANCE_SLACK_CHANNEL") or "#finance-alerts",
                         env("FINANCE_SLACK_API_URL") or "https://slack.com/api/")
    if name == "email":
        host = env("FINANCE_SMTP_HOST")
        if not host:
            if not explicit:
                return None
            raise SettingsError("FINANCE_SMTP_HOST is not set: the SMTP server alerts are sent through.")
        to = tuple(x.strip() for x in (env("FINANCE_ALERT_EMAIL_TO") or "").split(",") if x.strip())
        if not to:
            raise SettingsError("FINANCE_ALERT_EMAIL_TO is not set: who receives alert emails (comma-separated).")
        user = env("FINANCE_SMTP_USER")
        password = require_secret("FINANCE_SMTP_PASSWORD", "The SMTP password for FINANCE_SMTP_USER") if user else None
        return EmailSink(host, int(env("FINANCE_SMTP_PORT") or 587), env("FINANCE_ALERT_EMAIL_FROM") or (user or to[0]),
                         to, user, password, (env("FINANCE_SMTP_STARTTLS") or "true").lower() in ("1", "true", "yes"))
    if name == "webhook":
        url = env("FINANCE_ALERT_WEBHOOK_URL")
        if not url:
            if not explicit:
                return None
            raise SettingsError("FINANCE_ALERT_WEBHOOK_URL is not set: where signed alert webhooks are posted.")
        secret = require_secret("FINANCE_ALERT_WEBHOOK_SECRET", "The HMAC key receivers verify alert webhooks with")
        return WebhookSink(url, secret)
    raise AssertionError(name)


def _sandbox(name: str, settings: Settings) -> object:
    from finance_pipeline.notify import sandbox

    local = sandbox.start(settings)
    if name == "slack":
        creds = local.slack.emulator.credentials()
        return SlackSink(Secret(creds["bot_token"], "sandbox.slack_token"), creds["channel"], f"{local.slack.url}/api/")
    if name == "email":
        return EmailSink("127.0.0.1", local.smtp_port, "alerts@curtains-sandbox.test", ("bookkeeper@curtains-sandbox.test",),
                         local.smtp_user, Secret(local.smtp_password, "sandbox.smtp_password"), starttls=False)
    return WebhookSink(f"{local.webhook.url}/hooks/finance-alerts",
                       Secret(local.webhook.emulator.credentials()["secret"], "sandbox.alert_webhook_secret"))


def sinks(settings: Settings) -> dict[str, object]:
    """Configured sinks by name (live: from the environment; sandbox: local receivers unless set)."""
    chosen = wanted()
    out: dict[str, object] = {}
    for name in chosen if chosen is not None else ALL:
        sink = _live(name, explicit=chosen is not None and settings.mode == "live")
        if sink is None and settings.mode == "sandbox":
            sink = _sandbox(name, settings)
        if sink is not None:
            out[name] = sink
    return out
