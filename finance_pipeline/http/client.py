"""`ApiClient`: httpx with the retry, rate-limit, auth-refresh and redaction rules every platform needs.

- Retries with exponential backoff and full jitter on connection errors, timeouts, 429 and 5xx,
  and on bodies that do not parse (a truncated response); `Retry-After` is honoured.
- Writes are retried only when they are idempotent (an idempotency key, or a PUT).
- A client-side limiter is acquired before every attempt (and released after it), so a client
  configured with the documented limits does not trip the server's.
- A 401 triggers one token refresh through the auth object, then the call is replayed.
- Logs never contain secrets: URLs, headers and bodies go through `redact()`.
"""
from __future__ import annotations

import email.utils
import functools
import logging
import random
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Mapping, Protocol

import httpx
import orjson

from finance_pipeline.http.ratelimit import Unlimited
from finance_pipeline.http.redaction import redact

log = logging.getLogger("finance_pipeline.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
IDEMPOTENCY_HEADERS = ("idempotency-key", "requestid")


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """The TLS context every httpx client here verifies with: httpx's default (certifi's CA bundle,
    or SSL_CERT_FILE / SSL_CERT_DIR), built once.  Building one reads the whole CA bundle (tens of
    milliseconds), and each client built its own: once per platform per run.  An `SSLContext` is
    safe to share between connections and threads."""
    return httpx.create_ssl_context()


def json_default(obj: Any) -> Any:
    """orjson `default`: a `Decimal` becomes a JSON *number* with its exact digits (money is never
    routed through float on the way out)."""
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise TypeError(f"cannot send {obj} as a JSON number")
        return orjson.Fragment(format(obj, "f").encode())
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(obj: Any) -> bytes:
    """JSON bytes for a request body; Decimals as exact numbers."""
    return orjson.dumps(obj, default=json_default)


class Auth(Protocol):
    def headers(self) -> Mapping[str, str]: ...
    def refresh(self) -> bool: ...


class StaticHeaders:
    """Auth by fixed headers (Shopify access token, Stripe secret key)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def headers(self) -> Mapping[str, str]:
        return self._headers

    def refresh(self) -> bool:
        return False


class ApiError(RuntimeError):
    def __init__(self, platform: str, method: str, url: str, status: int | None, body: str, reason: str = "") -> None:
        self.platform = platform
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        what = f"HTTP {status}" if status is not None else reason
        super().__init__(redact(f"{platform}: {method} {url} failed: {what}: {body[:500]}"))


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    base_delay_s: float = 0.2
    max_delay_s: float = 30.0

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1))))


@dataclass
class Response:
    status: int
    headers: httpx.Headers
    content: bytes
    url: str
    _json: Any = field(default=None, repr=False)

    def json(self) -> Any:
        return self._json


def _retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class ReopeningPool:
    """An httpx connection pool opened on first use and again after `close()`, so an object holding
    one (a client, a token client) stays usable once its connections are closed: a source's
    resources share one client across gaps when none of them is running (ingest/shared_client.py)."""

    def __init__(self, open_pool: Callable[[], httpx.Client]) -> None:
        self._open = open_pool
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._open()
        return self._client

    @property
    def is_open(self) -> bool:
        return self._client is not None

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()


class ApiClient:
    def __init__(
        self,
        platform: str,
        base_url: str,
        *,
        auth: Auth | None = None,
        limiter: Any = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
        default_headers: Mapping[str, str] | None = None,
        on_response: Callable[[Response], None] | None = None,
        max_connections: int = 8,
        retry_hint: Callable[[Response], bool | None] | None = None,
        json_loads: Callable[[bytes], Any] = orjson.loads,
    ) -> None:
        self.platform = platform
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.limiter = limiter or Unlimited()
        self.retry = retry or RetryPolicy()
        self.on_response = on_response
        # The server's own say on retrying a failed response (Stripe's `Stripe-Should-Retry`):
        # True retries it (as for a 429/5xx), False never does, None leaves the default rules.
        self.retry_hint = retry_hint
        # e.g. `functools.partial(json.loads, parse_float=Decimal)`: money-exact parsing of answers
        self.json_loads = json_loads
        self.stats: Counter[str] = Counter()
        self._pool = ReopeningPool(lambda: httpx.Client(
            verify=tls_context(),
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            headers=dict(default_headers or {}),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        ))

    @property
    def _http(self) -> httpx.Client:
        return self._pool.client

    # -- public API -----------------------------------------------------------------------
    def close(self) -> None:
        """Closes the open connections.  The client stays usable: its rate-limit view, token and
        stats are kept, and the next call opens a new pool (a source's resources share one client
        across gaps when none of them is running: see ingest/shared_client.py)."""
        self._pool.close()

    def __enter__(self) -> "ApiClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        if path.startswith("http://") or path.startswith("https://"):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def get(self, path: str, params: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None, **kw: Any) -> Response:
        return self.request("GET", path, params=params, **kw)

    def get_json(self, path: str, params: Any = None, **kw: Any) -> Any:
        return self.get(path, params=params, **kw).json()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        data: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        expect_json: bool = True,
        ok_statuses: Iterable[int] = (),
    ) -> Response:
        method = method.upper()
        url = self.url(path)
        hdrs = dict(headers or {})
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS or any(h.lower() in IDEMPOTENCY_HEADERS for h in hdrs)
        if json is not None:  # raw `content` (multipart, SOAP XML) is sent as given
            content = dumps(json)
            hdrs.setdefault("Content-Type", "application/json")
        ok = set(ok_statuses)
        refreshed = False
        attempt = 0
        last_error = ""
        while True:
            attempt += 1
            self.limiter.acquire()
            try:  # after the limiter's wait, which can outlast a short-lived access token
                auth_headers = dict(self.auth.headers()) if self.auth else {}
            except BaseException:
                self.limiter.release()
                raise
            started = time.monotonic()
            try:
                raw = self._http.request(
                    method, url, params=params, content=content, data=data, headers={**auth_headers, **hdrs}
                )
                body = raw.content
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                self.stats["transport_errors"] += 1
                last_error = f"{type(exc).__name__}: {exc}"
                if idempotent and attempt < self.retry.max_attempts:
                    self._sleep(self.retry.backoff(attempt), method, url, last_error, attempt)
                    continue
                raise ApiError(self.platform, method, redact(url), None, "", last_error) from exc
            finally:
                self.limiter.release()
            self.stats["requests"] += 1
            self.stats[f"status_{raw.status_code}"] += 1
            resp = Response(raw.status_code, raw.headers, body, str(raw.url))
            if self.on_response is not None:
                self.on_response(resp)
            log.debug("%s %s %s -> %s in %.0f ms", self.platform, method, redact(str(raw.url)),
                      raw.status_code, (time.monotonic() - started) * 1000)

            if raw.status_code == 401 and self.auth is not None and not refreshed and self.auth.refresh():
                refreshed = True
                attempt -= 1
                continue
            hint = self.retry_hint(resp) if self.retry_hint is not None and raw.status_code >= 400 else None
            retryable = raw.status_code in RETRY_STATUSES if hint is None else hint
            if retryable and raw.status_code not in ok:
                last_error = f"HTTP {raw.status_code}"
                if (idempotent or raw.status_code == 429) and attempt < self.retry.max_attempts:
                    wait = _retry_after(raw.headers)
                    delay = wait if wait is not None else self.retry.backoff(attempt)
                    self._sleep(delay, method, url, last_error, attempt)
                    continue
                raise ApiError(self.platform, method, redact(url), raw.status_code, redact(body.decode("utf-8", "replace")))
            if raw.status_code >= 400 and raw.status_code not in ok:
                raise ApiError(self.platform, method, redact(url), raw.status_code, redact(body.decode("utf-8", "replace")))
            if expect_json and body:
                try:
                    resp._json = self.json_loads(body)
                except ValueError as exc:  # orjson's and json's decode errors are both ValueErrors
                    # a body cut short in transit: the request is safe to replay if idempotent
                    self.stats["bad_bodies"] += 1
                    last_error = f"unparseable body ({len(body)} bytes)"
                    if idempotent and attempt < self.retry.max_attempts:
                        self._sleep(self.retry.backoff(attempt), method, url, last_error, attempt)
                        continue
                    raise ApiError(self.platform, method, redact(url), raw.status_code, last_error) from exc
            return resp

    # -- internals ------------------------------------------------------------------------
    def _sleep(self, delay: float, method: str, url: str, why: str, attempt: int) -> None:
        self.stats["retries"] += 1
        log.info("%s %s %s: %s; retry %d in %.2fs", self.platform, method, redact(url), why, attempt, delay)
        time.sleep(delay)
