"""Keeps secrets out of logs.

Every `Secret` registers its value here; `redact()` masks registered values and anything that
looks like a credential in headers, query strings or bodies.  A logging filter applies it to
every record of the `finance_pipeline` loggers.
"""
from __future__ import annotations

import logging
import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

SENSITIVE_KEYS = (
    "authorization", "access_token", "refresh_token", "client_secret", "password", "api_key",
    "x-shopify-access-token", "token", "secret", "signature", "cookie", "code",
)
_KV = re.compile(
    r"(?i)\b(" + "|".join(re.escape(k) for k in SENSITIVE_KEYS) + r")(\"?\s*[:=]\s*\"?)(Bearer\s+|Basic\s+)?([^\s\"&,;]+)"
)


def register_secret(value: str | None) -> None:
    global _pattern
    if not value or len(value) < 6:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def redact(text: str) -> str:
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub("***", text)
    return _KV.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) or ''}***", text)


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: ("***" if k.lower() in SENSITIVE_KEYS or k.lower().endswith("-token") else redact(v))
            for k, v in headers.items()}


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            try:
                record.msg = record.getMessage()
            except Exception:  # pragma: no cover - malformed log call
                return True
            record.args = None
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_log_redaction() -> None:
    """Attach the redacting filter to the root handlers and our package logger."""
    flt = RedactingFilter()
    for name in ("finance_pipeline", "dagster", "dlt", "httpx", "uvicorn"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(flt)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(flt)
