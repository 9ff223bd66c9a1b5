"""Salesforce REST client: OAuth 2.0 client credentials, `instance_url`, SOQL paging.

- Auth: `POST <My Domain>/services/oauth2/token` with `grant_type=client_credentials` (the
  External Client App's consumer key and secret; it runs as the app's "Run As" user).  The answer
  has no expiry: the token is kept until a call answers 401 `INVALID_SESSION_ID`, then a new one
  is requested once and the call replayed (ApiClient's 401 → refresh).  API calls go to the
  answer's `instance_url`.
- Limits: a rolling 24 h allocation per org, not a rate: every answer's
  `Sforce-Limit-Info: api-usage=n/m` is kept in `SalesforceAuth.api_usage`; over it Salesforce
  answers 403 `REQUEST_LIMIT_EXCEEDED`, which is not retried (it will not pass before the window
  rolls).  Salesforce sends no 429.
- `query_pages`: `GET /services/data/v62.0/query|queryAll?q=<SOQL>` with
  `Sforce-Query-Options: batchSize=N`, then `nextRecordsUrl` verbatim until `done`.  Answers are
  parsed with Decimal floats, so `Amount` keeps its exact digits.

Live mode: `SALESFORCE_INSTANCE_URL` (https://<my-domain>.my.salesforce.com),
`SALESFORCE_CLIENT_ID`, `SALESFORCE_CLIENT_SECRET`.
"""
from __future__ import annotations

import functools
import json
import logging
import re
import threading
from decimal import Decimal
from typing import Any, Iterator, Mapping

from finance_pipeline.http.client import ApiClient, Response, RetryPolicy
from finance_pipeline.http.pagination import next_url_pages
from finance_pipeline.http.redaction import register_secret
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.salesforce import API_VERSION
from finance_pipeline.settings import Settings, SettingsError, env, require_secret

log = logging.getLogger("finance_pipeline.salesforce")
decimal_json = functools.partial(json.loads, parse_float=Decimal)


def live_connection(settings: Settings) -> Connection:
    how = ("Create an External Client App in Salesforce Setup with the OAuth client credentials flow enabled "
           "(a Run As user that can read Opportunities) and use its consumer key and secret")
    instance = env("SALESFORCE_INSTANCE_URL")
    if not instance:
        raise SettingsError("SALESFORCE_INSTANCE_URL is not set: your org's My Domain URL, e.g. "
                            "https://acme.my.salesforce.com (Setup > My Domain).")
    creds = {"client_id": require_secret("SALESFORCE_CLIENT_ID", how),
             "client_secret": require_secret("SALESFORCE_CLIENT_SECRET", how),
             "token_url": instance.rstrip("/") + "/services/oauth2/token"}
    return Connection("salesforce", instance.rstrip("/"), creds, settings)


class SalesforceAuth:
    """A client-credentials session: fetched on first use and again after INVALID_SESSION_ID."""

    def __init__(self, connection: Connection) -> None:
        settings = connection.settings
        self.token_url = connection.secret("token_url")
        self._form = {"grant_type": "client_credentials", "client_id": connection.secret("client_id"),
                      "client_secret": connection.secret("client_secret")}
        self._http = ApiClient("salesforce", self.token_url, timeout_s=max(5.0, settings.http_timeout_s),
                               retry=RetryPolicy(max_attempts=settings.http_max_attempts, base_delay_s=0.2,
                                                 max_delay_s=2.0))
        self._token: str | None = None
        self._lock = threading.Lock()
        self.instance_url: str | None = None
        self.sessions = 0
        self.api_usage: tuple[int, int] | None = None

    def _mint(self) -> None:
        body = self._http.request("POST", self.token_url, data=self._form, idempotent=True,
                                  headers={"Accept": "application/json"}).json()
        self._token = body["access_token"]
        register_secret(self._token)
        self.instance_url = body["instance_url"].rstrip("/")
        self.sessions += 1

    def headers(self) -> Mapping[str, str]:
        with self._lock:
            if self._token is None:
                self._mint()
            return {"Authorization": f"Bearer {self._token}"}

    def refresh(self) -> bool:
        with self._lock:
            self._mint()
        return True

    def on_response(self, response: Response) -> None:
        m = re.search(r"api-usage=(\d+)/(\d+)", response.headers.get("sforce-limit-info", ""))
        if m:
            self.api_usage = (int(m[1]), int(m[2]))

    def close(self) -> None:
        self._http.close()


class SalesforceClient(ApiClient):
    """ApiClient whose base URL follows the session's `instance_url`; closes its token client too."""

    def url(self, path: str) -> str:
        auth = self.auth
        if isinstance(auth, SalesforceAuth):
            if auth.instance_url is None:
                auth.headers()
            self.base_url = auth.instance_url or self.base_url
        return super().url(path)

    def close(self) -> None:
        super().close()
        if isinstance(self.auth, SalesforceAuth):
            self.auth.close()


def make_client(connection: Connection) -> SalesforceClient:
    settings = connection.settings
    auth = SalesforceAuth(connection)
    return SalesforceClient(
        "salesforce", connection.base_url, auth=auth,
        retry=RetryPolicy(max_attempts=settings.http_max_attempts, base_delay_s=0.5 / settings.time_scale,
                          max_delay_s=10.0 / settings.time_scale),
        timeout_s=settings.http_timeout_s, on_response=auth.on_response, json_loads=decimal_json,
        default_headers={"Accept": "application/json", "User-Agent": "finance-pipeline (salesforce source)"},
    )


def query_pages(client: ApiClient, soql: str, *, include_deleted: bool = False,
                batch_size: int = 2000) -> Iterator[dict[str, Any]]:
    """Every batch of a SOQL query (`queryAll` with deleted rows), following `nextRecordsUrl`."""
    path = f"/services/data/{API_VERSION}/{'queryAll' if include_deleted else 'query'}"
    yield from next_url_pages(client, path, {"q": soql},
                              next_of=lambda b: None if b.get("done", True) else b.get("nextRecordsUrl"),
                              headers={"Sforce-Query-Options": f"batchSize={batch_size}"})
