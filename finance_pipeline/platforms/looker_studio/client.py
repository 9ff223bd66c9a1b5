"""Looker Studio: the connector endpoint's address and token (the publisher reads back through it)."""
from __future__ import annotations

import functools
import json
from decimal import Decimal

from finance_pipeline.http import ApiClient, RetryPolicy
from finance_pipeline.http.client import StaticHeaders
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import Secret, Settings, env, require_secret

DEFAULT_URL = "http://127.0.0.1:8790"  # `finance-pipeline looker-endpoint` listens here by default


def live_connection(settings: Settings) -> Connection:
    token = require_secret(
        "LOOKER_STUDIO_TOKEN", "The Looker Studio connector endpoint needs a bearer token: generate one (e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), give it to the endpoint "
        "(`finance-pipeline looker-endpoint`) and enter the same value as the connector's key in Looker Studio")
    url = env("LOOKER_STUDIO_URL") or DEFAULT_URL
    creds: dict[str, Secret | str] = {"token": token}
    return Connection("looker_studio", url, creds, settings)


def make_client(connection: Connection) -> ApiClient:
    """Answers parsed with exact decimals (the read-back compares money to the cent)."""
    settings = connection.settings
    return ApiClient("looker_studio", connection.base_url,
                     auth=StaticHeaders({"Authorization": f"Bearer {connection.secret('token')}"}),
                     retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=max(settings.http_timeout_s, 30),
                     json_loads=functools.partial(json.loads, parse_float=Decimal))
