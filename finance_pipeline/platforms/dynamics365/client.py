"""Business Central API v2.0 client: Entra ID client credentials (MSAL) and the company's base URL.

Live mode reads `BC_TENANT_ID`, `BC_CLIENT_ID`, `BC_CLIENT_SECRET` (an app registration with the
application permission `API.ReadWrite.All` on Dynamics 365 Business Central, admin consent, and
the app entered on BC's "Microsoft Entra Applications" page with permission sets), `BC_COMPANY_ID`
(the company's GUID, `GET …/api/v2.0/companies`) and optionally `BC_ENVIRONMENT` (default
`production`).  Every request goes to
`https://api.businesscentral.dynamics.com/v2.0/{tenant}/{environment}/api/v2.0/companies({id})/…`.

Limits (per user; the app registration is one user): 6 000 requests per 5-minute sliding window
and 5 requests processed at a time — the client holds both (`SlidingWindow`, at most 5 requests
in flight) and retries 429 / 503 after `Retry-After`.  Money arrives as JSON numbers and is
parsed as `Decimal`, never through binary floats.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from finance_pipeline.http.client import ApiClient, Response, RetryPolicy
from finance_pipeline.http.entra import LIVE_AUTHORITY_HOST, EntraAuth
from finance_pipeline.http.ratelimit import CompositeLimiter, ConcurrencyLimiter, SlidingWindow
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import Secret, Settings, SettingsError, env

SCOPE = "https://api.businesscentral.dynamics.com/.default"
LIVE_API_HOST = "https://api.businesscentral.dynamics.com"
REQUESTS_PER_WINDOW, WINDOW_S = 6_000, 300.0
MAX_CONCURRENT = 5
REQUIRED_ENV = ("BC_TENANT_ID", "BC_CLIENT_ID", "BC_CLIENT_SECRET", "BC_COMPANY_ID")
loads_decimal = functools.partial(json.loads, parse_float=Decimal)


def live_connection(settings: Settings) -> Connection:
    missing = [name for name in REQUIRED_ENV if not env(name)]
    if missing:
        raise SettingsError(
            f"Business Central live mode needs {', '.join(missing)} (missing). Register an app in Microsoft Entra "
            "ID with a client secret and the Dynamics 365 Business Central application permission "
            "API.ReadWrite.All (admin consent), add it on Business Central's 'Microsoft Entra Applications' page "
            "with permission sets, and set BC_TENANT_ID, BC_CLIENT_ID, BC_CLIENT_SECRET and BC_COMPANY_ID (the "
            "company's id from GET …/api/v2.0/companies); BC_ENVIRONMENT defaults to 'production'.")
    creds: dict[str, Secret | str] = {
        "tenant_id": env("BC_TENANT_ID") or "", "client_id": env("BC_CLIENT_ID") or "",
        "client_secret": Secret(env("BC_CLIENT_SECRET") or "", "BC_CLIENT_SECRET"),
        "company_id": env("BC_COMPANY_ID") or "", "environment": env("BC_ENVIRONMENT") or "production",
        "authority_host": LIVE_AUTHORITY_HOST,
    }
    return Connection("dynamics365", LIVE_API_HOST, creds, settings)


def api_root(connection: Connection) -> str:
    """`…/v2.0/{tenant}/{environment}/api/v2.0` (companies are listed here)."""
    return (f"{connection.base_url.rstrip('/')}/v2.0/{connection.secret('tenant_id')}/"
            f"{connection.get('environment') or 'production'}/api/v2.0")


def make_auth(connection: Connection) -> EntraAuth:
    return EntraAuth(connection, SCOPE, product="Business Central",
                     env_names=("BC_TENANT_ID", "BC_CLIENT_ID", "BC_CLIENT_SECRET"))


def make_client(connection: Connection, *, auth: EntraAuth | None = None) -> ApiClient:
    """A client whose relative paths are under `companies({companyId})/`."""
    settings = connection.settings
    limiter = CompositeLimiter(
        SlidingWindow(REQUESTS_PER_WINDOW, WINDOW_S, settings.time_scale, hold_until_release=True),
        ConcurrencyLimiter(MAX_CONCURRENT))
    return ApiClient(
        "dynamics365", f"{api_root(connection)}/companies({connection.secret('company_id')})",
        auth=auth or make_auth(connection), limiter=limiter,
        retry=RetryPolicy(max_attempts=settings.http_max_attempts), timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json"}, max_connections=MAX_CONCURRENT, json_loads=loads_decimal)


REFUSALS = frozenset({400, 404, 409, 412})


class Refused(Exception):
    """Business Central answered a definitive no: `{"error": {"code", "message"}}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


def call(client: ApiClient, method: str, path: str, **kw: Any) -> Response:
    """One request; a 400/404/409/412 raises `Refused` with BC's own code and message (read here, from
    the raw answer: ApiError bodies are redacted, and BC's `code` is a word redaction hides)."""
    resp = client.request(method, path, ok_statuses=REFUSALS, **kw)
    if resp.status in REFUSALS:
        try:
            err = json.loads(resp.content)["error"]
            code, message = str(err.get("code")), str(err.get("message") or "").split("  CorrelationId")[0].strip()
        except (ValueError, KeyError, TypeError):
            code, message = f"HTTP {resp.status}", resp.content.decode("utf-8", "replace")[:300]
        raise Refused(resp.status, code, message)
    return resp


MAX_BATCH = 100  # operations in one $batch request (BC's limit)


@dataclass(frozen=True)
class BatchAnswer:
    """One operation's answer inside a `$batch` response."""

    status: int
    body: Any

    def refusal(self) -> Refused | None:
        """BC's definitive no (400/404/409/412 with its error document) as `Refused`, else None."""
        if self.status not in REFUSALS:
            return None
        err = self.body.get("error") if isinstance(self.body, dict) else None
        if not isinstance(err, dict):
            return Refused(self.status, f"HTTP {self.status}", str(self.body)[:300])
        return Refused(self.status, str(err.get("code")),
                       str(err.get("message") or "").split("  CorrelationId")[0].strip())


def batch(client: ApiClient, operations: list[tuple[str, str, Any]]) -> list[BatchAnswer]:
    """Send (method, path under the company, JSON body or None) operations as one OData JSON `$batch`
    (`POST …/api/v2.0/$batch`, no `Isolation`: each operation stands alone, so one BC refuses does not
    undo the others).  Returns one answer per operation, in order.  A failure of the batch request
    itself (transport, 5xx after retries) raises as any request does: nothing is known of its operations."""
    if not operations or len(operations) > MAX_BATCH:
        raise ValueError(f"a $batch takes 1 to {MAX_BATCH} operations, not {len(operations)}")
    root, _, company = client.base_url.rpartition("/")  # …/api/v2.0 and companies({id})
    requests = []
    for n, (method, path, body) in enumerate(operations, start=1):
        op: dict[str, Any] = {"id": str(n), "method": method, "url": f"{company}/{path.lstrip('/')}"}
        if body is not None:
            op.update(headers={"Content-Type": "application/json"}, body=body)
        requests.append(op)
    answer = client.request("POST", f"{root}/$batch", json={"requests": requests},
                            headers={"Accept": "application/json"}).json()
    by_id = {str(r.get("id")): r for r in answer.get("responses") or []}
    missing = [op["id"] for op in requests if op["id"] not in by_id]
    if missing:
        raise ValueError(f"the $batch answer has no response for operation(s) {', '.join(missing)}")
    return [BatchAnswer(int(by_id[op["id"]]["status"]), by_id[op["id"]].get("body")) for op in requests]


def close(client: ApiClient) -> None:
    client.close()
    if isinstance(client.auth, EntraAuth):
        client.auth.close()
