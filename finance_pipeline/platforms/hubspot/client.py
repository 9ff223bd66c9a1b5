"""HubSpot CRM client: a private-app (or Service Key) bearer token and the account's limits.

- Auth: `Authorization: Bearer <token>`; the token does not expire (a 401 is a revoked token:
  nothing to refresh).  Live mode reads `HUBSPOT_ACCESS_TOKEN`.
- Limits: one client-side window of 100 requests / 10 s (private apps, shared by the account)
  and 5 / s for search, both kept a little under the server's; a 429 is retried after backoff.
- `list_pages`: `GET /crm/v3/objects/deals` with `after` = `paging.next.after`.
- `search_pages`: `POST /crm/v3/objects/deals/search` on `hs_lastmodifieddate GTE <watermark>`,
  sorted ascending.  A query pages through at most 10,000 results (HubSpot answers 400 beyond),
  so when the cap is reached (or the 400 comes) the query is started again from the last
  modified time seen — GTE, so deals sharing that millisecond are read again and dropped here.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Iterator, Sequence

from finance_pipeline.http.client import ApiClient, ApiError, RetryPolicy, StaticHeaders
from finance_pipeline.http.ratelimit import CompositeLimiter, SlidingWindow
from finance_pipeline.ingest.arrow import parse_timestamp
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.hubspot import (BURST_LIMIT, BURST_WINDOW_S, LIST_LIMIT, LIVE_API_URL, SEARCH_CAP,
                                                SEARCH_LIMIT, SEARCH_PER_S)
from finance_pipeline.settings import Settings, require_secret

log = logging.getLogger("finance_pipeline.hubspot")
DEALS = "/crm/v3/objects/deals"


def live_connection(settings: Settings) -> Connection:
    token = require_secret("HUBSPOT_ACCESS_TOKEN", "Create a private app (Settings > Integrations > Private Apps) or a "
                           "Service Key with the scope crm.objects.deals.read and use its access token")
    return Connection("hubspot", LIVE_API_URL, {"access_token": token}, settings)


def make_client(connection: Connection) -> ApiClient:
    settings = connection.settings
    ts = settings.time_scale
    limiter = CompositeLimiter(
        SlidingWindow(BURST_LIMIT - 10, BURST_WINDOW_S, ts, hold_until_release=True),
        SlidingWindow(SEARCH_PER_S - 1, 1.0, ts, hold_until_release=True))
    return ApiClient(
        "hubspot", connection.base_url,
        auth=StaticHeaders({"Authorization": f"Bearer {connection.secret('access_token')}"}),
        limiter=limiter,
        retry=RetryPolicy(max_attempts=settings.http_max_attempts, base_delay_s=1.0 / ts, max_delay_s=10.0 / ts),
        timeout_s=settings.http_timeout_s,
        default_headers={"Accept": "application/json", "User-Agent": "finance-pipeline (hubspot source)"},
    )


def list_pages(client: ApiClient, properties: Sequence[str], archived: bool = False) -> Iterator[list[dict]]:
    params: dict[str, Any] = {"limit": LIST_LIMIT, "properties": ",".join(properties),
                              "archived": str(archived).lower()}
    while True:
        body = client.get_json(DEALS, params=params)
        yield body.get("results") or []
        after = ((body.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return
        params["after"] = after


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def search_pages(client: ApiClient, properties: Sequence[str], since: datetime | None,
                 cap: int = SEARCH_CAP, limit: int = SEARCH_LIMIT) -> Iterator[list[dict]]:
    """Deals modified at or after `since`, oldest first, past the 10,000-result cap."""
    watermark = _ms(since) if since is not None else 0
    seen: set[tuple[str, str]] = set()
    while True:
        query: dict[str, Any] = {
            "filterGroups": [{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE",
                                           "value": str(watermark)}]}],
            "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            "properties": list(properties), "limit": limit}
        offset, last, capped = 0, None, False
        while True:
            if offset:
                query["after"] = str(offset)
            try:
                body = client.request("POST", f"{DEALS}/search", json=query, idempotent=True).json()
            except ApiError as exc:
                if exc.status == 400 and offset:  # past the result cap of one query
                    capped = True
                    break
                raise
            results = body.get("results") or []
            fresh = []
            for deal in results:
                key = (str(deal.get("id")), str((deal.get("properties") or {}).get("hs_lastmodifieddate")))
                if key not in seen:
                    seen.add(key)
                    fresh.append(deal)
                last = (deal.get("properties") or {}).get("hs_lastmodifieddate") or last
            if fresh:
                yield fresh
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return
            offset = int(after)
            if offset >= cap:
                capped = True
                break
        if not capped or last is None:
            return
        nxt = _ms(parse_timestamp(last))
        if nxt <= watermark:
            raise RuntimeError(f"hubspot: more than {cap} deals modified in the same millisecond "
                               f"({last}); the search API cannot page past them")
        log.info("hubspot: search reached its %d-result cap; continuing from %s", cap, last)
        watermark = nxt
