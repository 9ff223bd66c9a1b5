"""Microsoft Entra ID (Azure AD) client credentials through MSAL, for every Microsoft API we call
(Power BI, Dynamics 365 Business Central, …).

MSAL only accepts an `https://` authority, and the sandbox serves Entra ID on a loopback `http://`
port.  So the authority stays the real one (`https://login.microsoftonline.com/<tenant>`) and MSAL
is given an HTTP client (`HostMapClient`, MSAL's documented `http_client` hook) that sends
requests for that host to the emulator — like a hosts-file entry.  In sandbox mode that client
refuses every host it was not told about, so a test can never reach the internet.
`instance_discovery=False` skips MSAL's call to Microsoft's instance-discovery endpoint.

A connection using it carries `tenant_id`, `client_id`, `client_secret`, optionally
`authority_host` (default the real one) and, in the sandbox, `login_url` (the emulator serving
that host).
"""
from __future__ import annotations

import threading
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx

from finance_pipeline.http.client import ReopeningPool, tls_context
from finance_pipeline.http.redaction import register_secret
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import SettingsError

LIVE_AUTHORITY_HOST = "https://login.microsoftonline.com"


class HostMapClient:
    """The `http_client` MSAL calls (`get` / `post` returning objects with `status_code`, `text`,
    `headers`, `raise_for_status`): httpx, with some https hosts served from other base URLs."""

    def __init__(self, host_map: Mapping[str, str], *, only_mapped: bool, timeout_s: float = 30.0) -> None:
        self.host_map = {urlsplit(k).netloc or k: v.rstrip("/") for k, v in host_map.items()}
        self.only_mapped = only_mapped
        self._pool = ReopeningPool(lambda: httpx.Client(timeout=timeout_s, verify=tls_context()))

    @property
    def _http(self) -> httpx.Client:
        return self._pool.client

    def _url(self, url: str) -> str:
        parts = urlsplit(url)
        target = self.host_map.get(parts.netloc)
        if target is None:
            if self.only_mapped:
                raise RuntimeError(f"sandbox: refusing to call {parts.scheme}://{parts.netloc} (not an emulator)")
            return url
        base = urlsplit(target)
        return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, parts.fragment))

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> httpx.Response:
        return self._http.get(self._url(url), params=params, headers=headers)

    def post(self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
             ) -> httpx.Response:
        return self._http.post(self._url(url), params=params, data=data, headers=headers)

    def close(self) -> None:
        self._pool.close()


class EntraAuth:
    """`Auth` for ApiClient: a bearer token for `scope` from MSAL's client-credentials flow (cached by
    MSAL until shortly before expiry; a 401 drops the cache and asks again).

    `product` and `env_names` only shape the error a refused credential raises."""

    def __init__(self, connection: Connection, scope: str, *, product: str, env_names: tuple[str, ...]) -> None:
        import msal

        self._msal = msal
        self.connection = connection
        self.scope = scope
        self.product = product
        self.env_names = env_names
        sandbox = connection.settings.mode == "sandbox"
        host = connection.get("authority_host") or LIVE_AUTHORITY_HOST
        host_map = {host: connection.get("login_url") or ""} if connection.get("login_url") else {}
        self.http = HostMapClient(host_map, only_mapped=sandbox, timeout_s=connection.settings.http_timeout_s)
        self.authority = f"{host.rstrip('/')}/{connection.secret('tenant_id')}"
        self._lock = threading.Lock()
        self._app = self._new_app()
        self.acquired = 0

    def _new_app(self) -> Any:
        return self._msal.ConfidentialClientApplication(
            self.connection.secret("client_id"), client_credential=self.connection.secret("client_secret"),
            authority=self.authority, http_client=self.http, instance_discovery=False)

    def headers(self) -> Mapping[str, str]:
        with self._lock:
            result = self._app.acquire_token_for_client(scopes=[self.scope])
        if "access_token" not in result:
            raise SettingsError(
                f"Microsoft Entra ID refused the {self.product} credentials ({result.get('error')}: "
                f"{(result.get('error_description') or '').splitlines()[0][:200]}); check "
                f"{', '.join(self.env_names)}.")
        token = result["access_token"]
        if result.get("token_source") == "identity_provider":
            self.acquired += 1
            register_secret(token)
        return {"Authorization": f"Bearer {token}"}

    def refresh(self) -> bool:
        with self._lock:
            self._app = self._new_app()  # a fresh cache: the next headers() asks Entra ID again
        return True

    def close(self) -> None:
        self.http.close()
