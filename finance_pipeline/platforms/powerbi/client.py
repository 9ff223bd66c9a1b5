"""Power BI client: Entra ID client credentials through MSAL, then the REST API v1.0.

MSAL only accepts an `https://` authority, and the sandbox serves Entra ID on a loopback `http://`
port.  So the authority stays the real one (`https://login.microsoftonline.com/<tenant>`) and MSAL
is given an HTTP client (`HostMapClient`, MSAL's documented `http_client` hook) that sends
requests for that host to the emulator — like a hosts-file entry.  In sandbox mode that client
refuses every host it was not told about, so a test can never reach the internet.
`instance_discovery=False` skips MSAL's call to Microsoft's instance-discovery endpoint.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx

from finance_pipeline.http import ApiClient, RetryPolicy
from finance_pipeline.http.redaction import register_secret
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import Secret, Settings, SettingsError, env

log = logging.getLogger("finance_pipeline.powerbi")

SCOPE = "https://analysis.windows.net/powerbi/api/.default"
LIVE_AUTHORITY_HOST = "https://login.microsoftonline.com"
LIVE_API_URL = "https://api.powerbi.com/v1.0/myorg"
REQUIRED_ENV = ("POWERBI_TENANT_ID", "POWERBI_CLIENT_ID", "POWERBI_CLIENT_SECRET", "POWERBI_GROUP_ID")


def live_connection(settings: Settings) -> Connection:
    missing = [name for name in REQUIRED_ENV if not env(name)]
    if missing:
        raise SettingsError(
            f"Power BI live mode needs {', '.join(missing)} (missing). Register an app in Microsoft Entra ID "
            "with a client secret, allow service principals to use Power BI APIs (tenant setting), add the app "
            "to the workspace as Member or Contributor, and set POWERBI_TENANT_ID, POWERBI_CLIENT_ID, "
            "POWERBI_CLIENT_SECRET and POWERBI_GROUP_ID (the workspace id) in the environment or in .env.")
    creds: dict[str, Secret | str] = {
        "tenant_id": env("POWERBI_TENANT_ID") or "",
        "client_id": env("POWERBI_CLIENT_ID") or "",
        "client_secret": Secret(env("POWERBI_CLIENT_SECRET") or "", "POWERBI_CLIENT_SECRET"),
        "group_id": env("POWERBI_GROUP_ID") or "",
        "authority_host": env("POWERBI_AUTHORITY_HOST") or LIVE_AUTHORITY_HOST,
        "api_url": env("POWERBI_API_URL") or LIVE_API_URL,
    }
    return Connection("powerbi", LIVE_API_URL, creds, settings)


class HostMapClient:
    """The `http_client` MSAL calls (`get` / `post` returning objects with `status_code`, `text`,
    `headers`, `raise_for_status`): httpx, with some https hosts served from other base URLs."""

    def __init__(self, host_map: Mapping[str, str], *, only_mapped: bool, timeout_s: float = 30.0) -> None:
        self.host_map = {urlsplit(k).netloc or k: v.rstrip("/") for k, v in host_map.items()}
        self.only_mapped = only_mapped
        self._http = httpx.Client(timeout=timeout_s)

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
        self._http.close()


class MsalAuth:
    """`Auth` for ApiClient: a bearer token from MSAL's client-credentials flow (cached by MSAL
    until shortly before expiry; a 401 drops the cache and asks again)."""

    def __init__(self, connection: Connection) -> None:
        import msal

        self._msal = msal
        self.connection = connection
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
            result = self._app.acquire_token_for_client(scopes=[SCOPE])
        if "access_token" not in result:
            raise SettingsError(
                f"Microsoft Entra ID refused the Power BI credentials ({result.get('error')}: "
                f"{(result.get('error_description') or '').splitlines()[0][:200]}); check POWERBI_TENANT_ID, "
                "POWERBI_CLIENT_ID and POWERBI_CLIENT_SECRET.")
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


def make_client(connection: Connection, *, auth: MsalAuth | None = None) -> ApiClient:
    settings = connection.settings
    api_url = connection.get("api_url") or LIVE_API_URL
    return ApiClient("powerbi", api_url, auth=auth or MsalAuth(connection),
                     retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=settings.http_timeout_s,
                     default_headers={"Accept": "application/json"}, max_connections=4)
