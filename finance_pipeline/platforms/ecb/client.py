"""ECB Data Portal client: no credentials (public data), the `csvdata` format read as exact decimal
text, and a bounded request rate.

- `live_connection`: the public API at https://data-api.ecb.europa.eu, or `ECB_API_URL` (a mirror or
  proxy); `ECB_CURRENCIES` (default GBP,USD,AUD; GBP is always added) says which series to read.
- `make_client`: an `ApiClient` with a client-side window of 30 requests a minute (the ECB states no
  limit; a daily feed needs one request a run) and retries on 429/5xx/timeouts.  The CSV is parsed by
  the client's body hook (`parse_csv`), so a body cut short in transit (a last row with missing
  columns, or no final newline) counts as unparseable and the request is replayed.
- `fetch_rates`: one GET of `/service/data/EXR/D.<ccys>.EUR.SP00.A?startPeriod=…&format=csvdata`;
  a 404 ("No results found", e.g. before the day's 16:00 CET publication) is an empty answer.
"""
from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from finance_pipeline.http.client import ApiClient, RetryPolicy
from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.ecb import CSV_COLUMNS, DATA_PATH, DEFAULT_CURRENCIES, LIVE_API_URL
from finance_pipeline.settings import Settings, env

CLIENT_REQUESTS_PER_MINUTE = 30
NO_RESULTS = b"No results found."


def currencies(connection: Connection) -> tuple[str, ...]:
    listed = (connection.get("currencies") or ",".join(DEFAULT_CURRENCIES)).upper().replace(" ", "").split(",")
    return tuple(dict.fromkeys(["GBP", *[c for c in listed if c]]))


def live_connection(settings: Settings) -> Connection:
    creds = {"currencies": env("ECB_CURRENCIES") or ",".join(DEFAULT_CURRENCIES)}
    return Connection("ecb", (env("ECB_API_URL") or LIVE_API_URL).rstrip("/"), creds, settings)


def parse_csv(body: bytes) -> list[dict[str, str]]:
    """The rows of a csvdata answer as {column: text}; ValueError when the body is not whole."""
    if body.strip() == NO_RESULTS:
        return []
    text = body.decode("utf-8")
    if not text.endswith("\n"):
        raise ValueError("csvdata body does not end with a newline (cut short)")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(header[:len(CSV_COLUMNS)]) != CSV_COLUMNS[:len(header)] or "OBS_VALUE" not in header:
        raise ValueError(f"unexpected csvdata header {header!r}")
    rows = []
    for values in reader:
        if len(values) != len(header):
            raise ValueError(f"csvdata row with {len(values)} columns, header has {len(header)}")
        rows.append(dict(zip(header, values)))
    # The ECB fixes every currency on the same days, and sends series one after another: a body cut
    # exactly at a line end leaves the last series short of days the others have.
    days: dict[str, set[str]] = {}
    for row in rows:
        days.setdefault(row.get("CURRENCY", ""), set()).add(row.get("TIME_PERIOD", ""))
    if len({frozenset(d) for d in days.values()}) > 1:
        raise ValueError("csvdata series end on different days (body cut at a line end)")
    return rows


def make_client(connection: Connection) -> ApiClient:
    settings = connection.settings
    ts = settings.time_scale
    return ApiClient(
        "ecb", connection.base_url,
        limiter=SlidingWindow(CLIENT_REQUESTS_PER_MINUTE, 60.0, ts, hold_until_release=True),
        retry=RetryPolicy(max_attempts=settings.http_max_attempts, base_delay_s=1.0 / ts, max_delay_s=10.0 / ts),
        timeout_s=settings.http_timeout_s, json_loads=parse_csv,
        default_headers={"Accept": "text/csv", "User-Agent": "finance-pipeline (ecb source)"},
    )


def fetch_rates(client: ApiClient, ccys: tuple[str, ...], start: date | None = None,
                end: date | None = None) -> list[dict[str, Any]]:
    params: dict[str, str] = {"format": "csvdata"}
    if start is not None:
        params["startPeriod"] = start.isoformat()
    if end is not None:
        params["endPeriod"] = end.isoformat()
    path = f"{DATA_PATH}/D.{'+'.join(ccys)}.EUR.SP00.A"
    for _ in range(client.retry.max_attempts):
        rows = client.get(path, params=params, ok_statuses=(404,)).json() or []
        # a body cut between two series: whole series missing while others are there
        if not rows or {r.get("CURRENCY") for r in rows} >= set(ccys):
            return rows
    raise RuntimeError(f"ECB answers kept leaving out some of the series {', '.join(ccys)}")
