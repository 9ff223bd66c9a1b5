"""ECB Data Portal emulator: `GET /service/data/EXR/<key>` in the `csvdata` format, the world's
reference rates as of the clock (`platforms/ecb/rates.py`).

- flowRef `EXR`, `ECB,EXR` or `ECB,EXR,1.0`; key `FREQ.CURRENCY.CURRENCY_DENOM.EXR_TYPE.EXR_SUFFIX`,
  each dimension one code, several joined by `+`, or empty (any).  Served: `D.<GBP|USD|AUD>.EUR.SP00.A`.
- `startPeriod` / `endPeriod` (`YYYY-MM-DD`, `YYYY-MM` or `YYYY`), `updatedAfter` (ISO 8601 with an
  offset; an observation counts as updated when it was published or last revised), `format=csvdata`
  (or `Accept: text/csv`).  Any other format: 406; a malformed key or period: 400; nothing matching: 404
  "No results found." (the ECB's status codes).
- No authentication (public data).  The ECB states no rate limit; the sandbox refuses more than 60
  requests a minute (scaled) with 429 + Retry-After, so a client's limiter and retries are exercised.
- Test hooks: `revisions[(currency, date)] = (value, revised_at)` (the ECB corrects a published rate),
  `corruptions[(currency, date)] = {column: text}` (a broken row for the quarantine).
"""
from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.ecb import CSV_COLUMNS, DECIMALS, FLOW, TITLES
from finance_pipeline.platforms.ecb.rates import observations, published_at
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig
from finance_pipeline.sandbox.store import Sandbox

SERVED = ("GBP", "USD", "AUD")
PERIOD = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")
REQUESTS_PER_MINUTE = 60


def _period(value: str | None, end: bool) -> date | None:
    if not value:
        return None
    m = PERIOD.match(value)
    if not m:
        raise ValueError(value)
    year, month, day = int(m[1]), int(m[2] or (12 if end else 1)), m[3]
    if day:
        return date(year, month, int(day))
    if not end:
        return date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


class EcbEmulator(Emulator):
    name = "ecb"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.window = SlidingWindow(REQUESTS_PER_MINUTE, 60.0, self.config.time_scale)
        self.revisions: dict[tuple[str, date], tuple[Decimal, datetime]] = {}
        self.corruptions: dict[tuple[str, date], dict[str, str]] = {}
        self.queries: list[dict[str, str]] = []  # query parameters of every data request, in order

    def routes(self) -> list[Route]:
        return [Route("/service/data/{flow}/{key}", self.data), Route("/service/data/{flow}", self.data)]

    def rate_limit(self, request: Request) -> Response | None:
        return self.refuse_over(self.window, lambda wait: PlainTextResponse(
            "Too many requests.", 429, headers={"Retry-After": str(max(1, round(wait)))}))

    def fault_response(self, status: int) -> Response:
        return PlainTextResponse({429: "Too many requests.", 500: "Internal Server Error",
                                  503: "Service unavailable"}.get(status, "Error"), status)

    def _published(self) -> list[tuple[str, date, Decimal]]:
        clock = self.sandbox.clock
        _, rows = self.pages.get(("ecb", clock), lambda: observations(self.db, clock, SERVED))
        return rows

    async def data(self, request: Request) -> Response:
        if (refused := self.rate_limit(request)) is not None:
            return refused
        params = dict(request.query_params)
        self.queries.append(params)
        flow = request.path_params["flow"].split(",")  # FLOW_ID, AGENCY,FLOW_ID or AGENCY,FLOW_ID,VERSION
        if (flow[0] if len(flow) == 1 else flow[1]) != FLOW:
            return PlainTextResponse("No results found.", 404)
        fmt = params.get("format")
        if fmt != "csvdata" and not (fmt is None and "text/csv" in request.headers.get("accept", "")):
            return PlainTextResponse("Not Acceptable.", 406)
        key = request.path_params.get("key", "")
        dims = key.split(".") if key not in ("", "all") else [""] * 5
        if len(dims) != 5:
            return PlainTextResponse("Syntax error: the key must have 5 dimensions.", 400)
        try:
            start = _period(params.get("startPeriod"), end=False)
            end = _period(params.get("endPeriod"), end=True)
            updated_after = datetime.fromisoformat(params["updatedAfter"].replace("Z", "+00:00")) \
                if params.get("updatedAfter") else None
        except ValueError:
            return PlainTextResponse("Syntax error: invalid period or timestamp.", 400)
        if updated_after is not None and updated_after.tzinfo is None:
            updated_after = updated_after.replace(tzinfo=timezone.utc)
        freq, ccys, denom, kind, suffix = (set(d.split("+")) if d else None for d in dims)
        if (freq and "D" not in freq) or (denom and "EUR" not in denom) or (kind and "SP00" not in kind) \
                or (suffix and "A" not in suffix):
            return PlainTextResponse("No results found.", 404)
        clock = self.sandbox.clock
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        n = 0
        for ccy, day, value in self._published():
            if (ccys and ccy not in ccys) or (start and day < start) or (end and day > end):
                continue
            changed = published_at(day)
            revision = self.revisions.get((ccy, day))
            if revision is not None and revision[1] <= clock:
                value, changed = revision
            if updated_after is not None and changed <= updated_after:
                continue
            writer.writerow(self._row(ccy, day, value, self.corruptions.get((ccy, day), {})))
            n += 1
        if n == 0:
            return PlainTextResponse("No results found.", 404)
        return Response(out.getvalue(), media_type="text/csv", headers={"Content-Type": "text/csv;charset=UTF-8"})

    @staticmethod
    def _row(ccy: str, day: date, value: Decimal, corrupt: dict[str, Any]) -> list[str]:
        title = f"{TITLES.get(ccy, ccy)}/Euro"
        row = {c: "" for c in CSV_COLUMNS}
        row.update(KEY=f"{FLOW}.D.{ccy}.EUR.SP00.A", FREQ="D", CURRENCY=ccy, CURRENCY_DENOM="EUR", EXR_TYPE="SP00",
                   EXR_SUFFIX="A", TIME_PERIOD=day.isoformat(), OBS_VALUE=format(value, "f"), OBS_STATUS="A",
                   OBS_CONF="F", TIME_FORMAT="P1D", COLLECTION="A", UNIT_INDEX_BASE="99Q1=100",
                   DECIMALS=str(DECIMALS.get(ccy, 4)), SOURCE_AGENCY="4F0", TITLE=title,
                   TITLE_COMPL=f"ECB reference exchange rate, {title}, 2.15 pm (C.E.T.)", UNIT=ccy, UNIT_MULT="0")
        row.update(corrupt)
        return [row[c] for c in CSV_COLUMNS]
