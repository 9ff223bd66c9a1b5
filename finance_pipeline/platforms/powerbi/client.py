"""Power BI client: Entra ID client credentials through MSAL, then the REST API v1.0.

The token comes from the shared Entra ID helper (`finance_pipeline/http/entra.py`: MSAL keeps the
real `https://login.microsoftonline.com/<tenant>` authority; in the sandbox its `http_client`
maps that host to the emulator).
"""
from __future__ import annotations

import logging

from finance_pipeline.http import ApiClient, RetryPolicy
from finance_pipeline.http.entra import LIVE_AUTHORITY_HOST, EntraAuth
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import Secret, Settings, SettingsError, env

log = logging.getLogger("finance_pipeline.powerbi")

SCOPE = "https://analysis.windows.net/powerbi/api/.default"
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


class MsalAuth(EntraAuth):
    """Entra ID client credentials for the Power BI scope (finance_pipeline/http/entra.py)."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection, SCOPE, product="Power BI",
                         env_names=("POWERBI_TENANT_ID", "POWERBI_CLIENT_ID", "POWERBI_CLIENT_SECRET"))


def make_client(connection: Connection, *, auth: MsalAuth | None = None) -> ApiClient:
    settings = connection.settings
    api_url = connection.get("api_url") or LIVE_API_URL
    return ApiClient("powerbi", api_url, auth=auth or MsalAuth(connection),
                     retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=settings.http_timeout_s,
                     default_headers={"Accept": "application/json"}, max_connections=4)
