"""Xero client: OAuth2 with rotating refresh tokens, the documented limits, JSON with exact money.

Token handling (`XeroAuth`):
- the access token (30 min) is cached in memory and in the token file until shortly before expiry;
- refresh tokens rotate on every refresh: the new one is written atomically (write + rename,
  mode 0600) to `<data>/secrets/xero_token.json` before it is used for anything;
- refreshes are serialised across threads (a lock) and processes (`flock` on a lock file beside
  the token file), and the token file is re-read after taking the lock: if another worker has
  rotated meanwhile, its tokens are adopted instead of spending the old refresh token again —
  spending it twice would fork the chain (both children live for the 30-minute grace, one dies);
- the connection's refresh token (`XERO_REFRESH_TOKEN`, or the sandbox's seeded one) is only a
  seed: used when no token file exists, or when it differs from the seed recorded in the file
  (someone re-authorised and put a new token in the environment).
"""
from __future__ import annotations

import base64
import fcntl
import functools
import hashlib
import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator, Mapping

from finance_pipeline.http import ApiClient, ApiError, CompositeLimiter, ConcurrencyLimiter, RetryPolicy, SlidingWindow
from finance_pipeline.http.redaction import register_secret
from finance_pipeline.platforms.base import Connection
from finance_pipeline.sandbox.store import atomic_write
from finance_pipeline.settings import Secret, Settings, SettingsError, env

log = logging.getLogger("finance_pipeline.xero")

LIVE_TOKEN_URL = "https://identity.xero.com/connect/token"
LIVE_API_URL = "https://api.xero.com/api.xro/2.0"
TOKEN_FILE = "xero_token.json"
REQUIRED_ENV = ("XERO_CLIENT_ID", "XERO_CLIENT_SECRET", "XERO_TENANT_ID", "XERO_REFRESH_TOKEN")


class XeroAuthError(SettingsError):
    """Xero refused our credentials; the message says what to do (never shows a secret)."""


def live_connection(settings: Settings) -> Connection:
    """Credentials from the environment / `.env`; one SettingsError naming every missing variable."""
    missing = [name for name in REQUIRED_ENV if not env(name)]
    if missing:
        raise SettingsError(
            f"Xero live mode needs {', '.join(missing)} (missing). Create an app at developer.xero.com "
            "(scopes offline_access accounting.transactions accounting.contacts accounting.settings), "
            "authorise it once, and set XERO_CLIENT_ID, XERO_CLIENT_SECRET, XERO_TENANT_ID (from GET "
            "/connections) and XERO_REFRESH_TOKEN (the first refresh token; rotated ones are kept in "
            f"{settings.secrets_dir / TOKEN_FILE}) in the environment or in .env.")
    creds: dict[str, Secret | str] = {
        "client_id": Secret(env("XERO_CLIENT_ID") or "", "XERO_CLIENT_ID"),
        "client_secret": Secret(env("XERO_CLIENT_SECRET") or "", "XERO_CLIENT_SECRET"),
        "refresh_token": Secret(env("XERO_REFRESH_TOKEN") or "", "XERO_REFRESH_TOKEN"),
        "tenant_id": env("XERO_TENANT_ID") or "",
        "token_url": env("XERO_TOKEN_URL") or LIVE_TOKEN_URL,
        "api_url": env("XERO_API_URL") or LIVE_API_URL,
    }
    if env("XERO_WEBHOOK_KEY"):
        creds["webhook_key"] = Secret(env("XERO_WEBHOOK_KEY") or "", "XERO_WEBHOOK_KEY")
    return Connection("xero", "https://api.xero.com", creds, settings)


@dataclass
class TokenSet:
    access_token: str
    expires_at: float  # epoch seconds
    refresh_token: str
    obtained_at: float
    seed: str  # fingerprint of the (client id, initial refresh token) this chain grew from

    def to_json(self) -> bytes:
        return json.dumps({"version": 1, **asdict(self)}, indent=2).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "TokenSet":
        data = json.loads(raw)
        return cls(data["access_token"], float(data["expires_at"]), data["refresh_token"],
                   float(data["obtained_at"]), data.get("seed", ""))


def _seed_fingerprint(client_id: str, refresh_token: str) -> str:
    return hashlib.sha256(f"{client_id}\0{refresh_token}".encode()).hexdigest()[:24]


class XeroAuth:
    """`Auth` for ApiClient: `headers()` gives a valid bearer token, `refresh()` forces a new one."""

    def __init__(self, *, token_url: str, client_id: str, client_secret: str, initial_refresh_token: str,
                 token_path: Path, timeout_s: float = 30.0, max_attempts: int = 5,
                 expiry_margin_s: float = 60.0, clock: Callable[[], float] = time.time) -> None:
        self.token_url = token_url
        self.token_path = Path(token_path)
        self.lock_path = self.token_path.with_name(self.token_path.name + ".lock")
        self._client_id = client_id
        self._client_secret = client_secret
        self._initial = initial_refresh_token
        self._seed = _seed_fingerprint(client_id, initial_refresh_token)
        self._margin = expiry_margin_s
        self._clock = clock
        self._token: TokenSet | None = None
        self._lock = threading.RLock()
        self.refreshes = 0  # refreshes this object performed (not adopted)
        for value in (client_secret, initial_refresh_token):
            register_secret(value)
        self._http = ApiClient("xero-identity", token_url, timeout_s=timeout_s,
                               retry=RetryPolicy(max_attempts=max_attempts))

    @classmethod
    def from_connection(cls, connection: Connection) -> "XeroAuth":
        settings = connection.settings
        return cls(token_url=connection.get("token_url") or f"{connection.base_url.rstrip('/')}/connect/token",
                   client_id=connection.secret("client_id"), client_secret=connection.secret("client_secret"),
                   initial_refresh_token=connection.secret("refresh_token"),
                   token_path=settings.secrets_dir / TOKEN_FILE, timeout_s=max(5.0, settings.http_timeout_s),
                   max_attempts=settings.http_max_attempts)

    # -- Auth protocol ---------------------------------------------------------------------------
    def headers(self) -> Mapping[str, str]:
        with self._lock:
            token = self._token
            if token is None or not self._fresh(token):
                self._refresh(stale=token.access_token if token else None)
                token = self._token
            assert token is not None
            return {"Authorization": f"Bearer {token.access_token}"}

    def refresh(self) -> bool:
        """Called after a 401: the current access token was refused, get another one."""
        with self._lock:
            self._refresh(stale=self._token.access_token if self._token else None)
        return True

    def close(self) -> None:
        self._http.close()

    # -- internals -------------------------------------------------------------------------------
    def _fresh(self, token: TokenSet) -> bool:
        return token.expires_at - self._margin > self._clock()

    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _read_file(self) -> TokenSet | None:
        try:
            token = TokenSet.from_json(self.token_path.read_bytes())
        except FileNotFoundError:
            return None
        except (ValueError, KeyError) as exc:
            raise XeroAuthError(f"{self.token_path} is not a valid Xero token file ({type(exc).__name__}); "
                                "delete it to start again from XERO_REFRESH_TOKEN") from None
        register_secret(token.access_token)
        register_secret(token.refresh_token)
        return token

    def _refresh(self, stale: str | None) -> None:
        """Under both locks: adopt a newer token from the file, or spend the newest refresh token."""
        with self._process_lock():
            on_disk = self._read_file()
            if on_disk is not None and on_disk.seed != self._seed:
                log.info("xero: the configured refresh token changed; starting a new token chain from it")
                on_disk = None
            if on_disk is not None and on_disk.access_token != stale and self._fresh(on_disk):
                self._token = on_disk  # another thread or process rotated already (or a new process starts)
                return
            refresh_token = on_disk.refresh_token if on_disk is not None else self._initial
            self._token = self._exchange(refresh_token)

    def _token_request(self, refresh_token: str) -> dict:
        """Body and headers of the refresh call: HTTP Basic client credentials (Xero, Intuit); a
        provider that wants them in the body (FreshBooks) overrides this."""
        basic = base64.b64encode(f"{self._client_id}:{self._client_secret}".encode()).decode()
        return {"data": {"grant_type": "refresh_token", "refresh_token": refresh_token},
                "headers": {"Authorization": f"Basic {basic}", "Accept": "application/json"}}

    def _exchange(self, refresh_token: str) -> TokenSet:
        try:
            resp = self._http.request("POST", self.token_url, idempotent=True, **self._token_request(refresh_token))
        except ApiError as exc:
            if exc.status in (400, 401) and ("invalid_grant" in exc.body or "invalid_client" in exc.body):
                what = "refresh token" if "invalid_grant" in exc.body else "client id / secret"
                raise XeroAuthError(
                    f"Xero refused the {what} ({'invalid_grant' if what == 'refresh token' else 'invalid_client'}). "
                    "Re-authorise the app and put the new refresh token in XERO_REFRESH_TOKEN (a changed value "
                    f"replaces the chain kept in {self.token_path}); check XERO_CLIENT_ID / XERO_CLIENT_SECRET."
                ) from None
            raise
        body = resp.json()
        now = self._clock()
        token = TokenSet(body["access_token"], now + float(body.get("expires_in", 1800)), body["refresh_token"],
                         now, self._seed)
        register_secret(token.access_token)
        register_secret(token.refresh_token)
        # persist before anything uses it: a crash now leaves the new chain on disk, and a crash
        # before this line leaves the previous refresh token, still valid for the grace period
        atomic_write(self.token_path, token.to_json(), mode=0o600)
        self.refreshes += 1
        log.info("xero: access token refreshed (valid %d s); refresh token rotated", int(token.expires_at - now))
        return token


def make_client(connection: Connection, *, auth: XeroAuth | None = None) -> ApiClient:
    """ApiClient for the Accounting API: auth, tenant header, Xero's limits, Decimal-exact JSON.

    Limiter order matters: take a concurrency slot first, then the window slots.  The windows hold
    each call's place until its response is in and date it then, so latency can never make Xero
    see 61 calls in its minute (see SlidingWindow).
    """
    settings = connection.settings
    scale = settings.time_scale if settings.mode == "sandbox" else 1.0
    limiter = CompositeLimiter(
        ConcurrencyLimiter(5),
        SlidingWindow(60, 60, scale, margin=0.01, hold_until_release=True),
        SlidingWindow(5000, 86_400, scale, margin=0.01, hold_until_release=True),
    )
    api_url = connection.get("api_url") or f"{connection.base_url.rstrip('/')}/api.xro/2.0"

    def watch_limits(resp) -> None:  # noqa: ANN001 - http.client.Response
        remaining = resp.headers.get("x-daylimit-remaining")
        if remaining is not None and remaining.isdigit() and int(remaining) < 100:
            log.warning("xero: only %s calls left today for this tenant", remaining)

    return ApiClient(
        "xero", api_url, auth=auth or XeroAuth.from_connection(connection), limiter=limiter,
        retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=settings.http_timeout_s,
        default_headers={"xero-tenant-id": connection.secret("tenant_id"), "Accept": "application/json"},
        on_response=watch_limits, max_connections=5,
        json_loads=functools.partial(json.loads, parse_float=Decimal),
    )
