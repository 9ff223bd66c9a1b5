"""HubSpot CRM emulator: the UK/EU trade reps' deals as of the sandbox clock.

- Auth: private app token, `Authorization: Bearer pat-eu1-…`; anything else answers 401
  `{"status":"error","category":"INVALID_AUTHENTICATION",…}`.
- `GET /crm/v3/objects/deals` (also `/crm/objects/2026-03/deals`): `limit` ≤ 100 (default 10),
  `after` (the next deal id, from `paging.next.after`), `properties` (CSV; unknown names are left
  out, as HubSpot does), `archived=true` (only archived deals, with `archivedAt`).
- `POST /crm/v3/objects/deals/search`: `filterGroups` (OR of groups, AND inside; EQ, NEQ, LT, LTE,
  GT, GTE, BETWEEN, IN, HAS_PROPERTY, NOT_HAS_PROPERTY on hs_lastmodifieddate, createdate, closedate
  (epoch ms), hs_object_id, dealstage, invoice_number), one sort, `limit` ≤ 200, `after` (an offset);
  answers `total`.  A query pages through at most `search_cap` (10,000) results: asking beyond
  answers 400.  Archived deals are not searchable.
- Every property value is a string: amount "4900.00", datetimes ISO-8601 UTC with milliseconds,
  `closedate` midnight UTC.  Custom deal properties: `invoice_number`, `trade_customer_id`,
  `trade_company`.
- Rate limits: 100 requests / 10 s per account (private app, Starter) with the
  `X-HubSpot-RateLimit-*` headers, and 5 requests / s on search (no rate headers on search
  answers, as documented); over either, 429 with `policyName` TEN_SECONDLY_ROLLING / SECONDLY.
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from datetime import date, datetime, timezone
from typing import Any, Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.hubspot import (BURST_LIMIT, BURST_WINDOW_S, DAILY_LIMIT, LIST_LIMIT, SEARCH_CAP,
                                                SEARCH_LIMIT, SEARCH_PER_S)
from finance_pipeline.platforms.hubspot.world import STAGE_PROBABILITY, WON, current_sql
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
log = logging.getLogger("finance_pipeline.sandbox.hubspot")
DEFAULT_PROPERTIES = ("dealname", "amount", "closedate", "pipeline", "dealstage", "createdate", "hs_lastmodifieddate",
                      "hs_object_id")
# searchable property -> (SQL column, kind)
FILTERABLE = {"hs_lastmodifieddate": ("epoch_ms(modified_at)", "ms"), "createdate": ("epoch_ms(created_at)", "ms"),
              "closedate": ("epoch_ms(cast(close_date as timestamp))", "ms"), "hs_object_id": ("deal_num", "id"),
              "dealstage": ("stage", "text"), "invoice_number": ("invoice_number", "text")}
OPERATORS = {"EQ": "=", "NEQ": "<>", "LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}
ID_BASE = 18_400_000_000


class HubSpotError(Exception):
    def __init__(self, status: int, message: str, category: str = "VALIDATION_ERROR") -> None:
        super().__init__(message)
        self.status, self.message, self.category = status, message, category

    def body(self) -> dict:
        return {"status": "error", "message": self.message, "correlationId": str(uuid.uuid4()),
                "category": self.category}


def iso_ms(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _close(value: date | None) -> str | None:
    return None if value is None else f"{value.isoformat()}T00:00:00.000Z"


def render_deal(r: dict, wanted: list[str]) -> dict:
    won, closed = r["stage"] == WON, r["stage"] in (WON, "closedlost")
    props = {
        "dealname": r["name"], "amount": f"{r['amount']:.2f}", "deal_currency_code": r["currency"],
        "dealstage": r["stage"], "pipeline": "default", "closedate": _close(r["close_date"]),
        "createdate": iso_ms(r["created_at"]), "hs_lastmodifieddate": iso_ms(r["modified_at"]),
        "hs_object_id": r["deal_id"], "hubspot_owner_id": r["owner_id"], "hs_is_closed": str(closed).lower(),
        "hs_is_closed_won": str(won).lower(), "hs_deal_stage_probability": STAGE_PROBABILITY.get(r["stage"]),
        "invoice_number": r["invoice_number"], "trade_customer_id": r["customer_id"], "trade_company": r["company"],
    }
    deal = {"id": r["deal_id"], "properties": {k: props[k] for k in wanted if k in props},
            "createdAt": iso_ms(r["created_at"]), "updatedAt": iso_ms(r["system_modstamp"]),
            "archived": bool(r["is_deleted"])}
    if r["is_deleted"]:
        deal["archivedAt"] = iso_ms(r["deleted_at"])
    return deal


class HubSpotEmulator(Emulator):
    name = "hubspot"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        digest = hashlib.blake2b(f"hubspot:{sandbox.state().seed}".encode(), digest_size=24).hexdigest()
        self.portal_id = str(140_000_000 + int(digest[:6], 16) % 9_000_000)
        self.token = f"pat-eu1-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        ts = self.config.time_scale
        self.burst = SlidingWindow(BURST_LIMIT, BURST_WINDOW_S, ts)
        self.search_window = SlidingWindow(SEARCH_PER_S, 1.0, ts)
        self.search_cap = SEARCH_CAP  # tests lower it to exercise re-windowing
        self.daily_used = 0
        self.corruptions: dict[str, dict[str, Any]] = {}  # test hook: deal id -> properties overridden

    def credentials(self) -> dict[str, str]:
        return {"access_token": self.token, "portal_id": self.portal_id}

    def routes(self) -> list[Route]:
        out = []
        for prefix in ("/crm/v3/objects/deals", "/crm/objects/2026-03/deals"):
            out += [Route(prefix, self._endpoint(self.list_deals)),
                    Route(f"{prefix}/search", self._endpoint(self.search, search=True), methods=["POST"]),
                    Route(prefix + "/{deal_id}", self._endpoint(self.get_deal))]
        return out

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return self._too_many("TEN_SECONDLY_ROLLING")
        return json_response(HubSpotError(status, "internal error", "INTERNAL_ERROR").body(), status)

    def _too_many(self, policy: str) -> Response:
        what = "ten_secondly_rolling" if policy == "TEN_SECONDLY_ROLLING" else "secondly"
        return json_response({"status": "error", "message": f"You have reached your {what} limit.",
                              "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()), "policyName": policy,
                              "groupName": f"privateapp:{self.portal_id}"}, 429)

    def _rate_headers(self) -> dict[str, str]:
        return {"X-HubSpot-RateLimit-Max": str(BURST_LIMIT),
                "X-HubSpot-RateLimit-Remaining": str(max(0, self.burst.remaining())),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(BURST_WINDOW_S * 1000)),
                "X-HubSpot-RateLimit-Daily": str(DAILY_LIMIT),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, DAILY_LIMIT - self.daily_used))}

    def _endpoint(self, handler: Callable[..., Any], search: bool = False) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), self.token):
                err = HubSpotError(401, "Authentication credentials not found. This API supports OAuth 2.0 "
                                        "authentication and you can find more details at "
                                        "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                                   "INVALID_AUTHENTICATION")
                return json_response(err.body(), 401)
            if self.config.enforce_rate_limits:
                if self.burst.try_acquire() > 0:
                    return self.refuse(self._too_many("TEN_SECONDLY_ROLLING"))
                if search and self.search_window.try_acquire() > 0:
                    return self.refuse(self._too_many("SECONDLY"))
            self.daily_used += 1
            headers = {} if search else self._rate_headers()
            try:
                body = await request.body()
                result = await run_in_threadpool(handler, request, body)
            except HubSpotError as err:
                return json_response(err.body(), err.status, headers)
            except Exception:
                log.exception("hubspot emulator: %s %s failed", request.method, request.url.path)
                return json_response(HubSpotError(500, "internal error", "INTERNAL_ERROR").body(), 500)
            return json_response(result, 200, headers)

        return endpoint

    # ------------------------------------------------------------------ reads
    def _rows(self, where: str = "true", args: list | None = None, order: str = "deal_num") -> list[dict]:
        sql, n = current_sql(self.name)
        cur = self.db.execute(f"select * from ({sql}) x where {where} order by {order}",
                              [self.sandbox.clock] * n + (args or []))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]

    def _render(self, rows: list[dict], wanted: list[str]) -> list[dict]:
        out = []
        for r in rows:
            deal = render_deal(r, wanted)
            if r["deal_id"] in self.corruptions:
                deal["properties"].update(self.corruptions[r["deal_id"]])
            out.append(deal)
        return out

    @staticmethod
    def _properties(raw: str | list | None) -> list[str]:
        if raw is None or raw == "" or raw == []:
            return list(DEFAULT_PROPERTIES)
        names = raw if isinstance(raw, list) else [p for part in raw.split(",") for p in [part.strip()] if p]
        return list(dict.fromkeys([*names, "createdate", "hs_lastmodifieddate", "hs_object_id"]))

    @staticmethod
    def _limit(raw: Any, maximum: int, default: int) -> int:
        try:
            limit = int(raw) if raw not in (None, "") else default
        except (TypeError, ValueError):
            raise HubSpotError(400, f"limit: invalid value {raw!r}") from None
        if not 1 <= limit <= maximum:
            raise HubSpotError(400, f"limit must be between 1 and {maximum}, got {limit}")
        return limit

    def list_deals(self, request: Request, body: bytes) -> dict:
        qp = request.query_params
        limit = self._limit(qp.get("limit"), LIST_LIMIT, 10)
        archived = (qp.get("archived") or "false").lower() == "true"
        props = self._properties(",".join(qp.getlist("properties")) if qp.getlist("properties") else None)
        after = qp.get("after")
        where, args = ["is_deleted = ?"], [archived]
        if after:
            if not after.isdigit():
                raise HubSpotError(400, f"after: invalid cursor {after!r}")
            where.append("deal_num >= ?")
            args.append(int(after) - ID_BASE)
        rows = self._rows(" and ".join(where), args)
        page, more = rows[:limit], len(rows) > limit
        out: dict[str, Any] = {"results": self._render(page, props)}
        if more:
            nxt = rows[limit]["deal_id"]
            base = str(request.url).split("?")[0]
            out["paging"] = {"next": {"after": nxt, "link": f"{base}?after={nxt}"}}
        return out

    def get_deal(self, request: Request, body: bytes) -> dict:
        deal_id = request.path_params["deal_id"]
        rows = self._rows("deal_id = ? and is_deleted = ?",
                          [deal_id, (request.query_params.get("archived") or "false").lower() == "true"])
        if not rows:
            raise HubSpotError(404, "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND")
        props = self._properties(",".join(request.query_params.getlist("properties")) or None)
        return self._render(rows, props)[0]

    def _filter(self, f: dict, where: list[str], args: list) -> None:
        name, op = f.get("propertyName"), f.get("operator", "EQ")
        if name not in FILTERABLE:
            raise HubSpotError(400, f"There was a problem with the request: unsupported filter property {name!r}")
        column, kind = FILTERABLE[name]

        def typed(v: Any) -> Any:
            if kind in ("ms", "id"):
                try:
                    return int(str(v)) - (ID_BASE if kind == "id" else 0)
                except ValueError:
                    if kind == "ms":  # ISO dates are accepted too
                        try:
                            return int(datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp() * 1000)
                        except ValueError:
                            pass
                    raise HubSpotError(400, f"{name}: {v!r} is not a valid value") from None
            return str(v)

        if op in OPERATORS:
            where.append(f"{column} {OPERATORS[op]} ?")
            args.append(typed(f.get("value")))
        elif op == "BETWEEN":
            where.append(f"{column} between ? and ?")
            args.extend([typed(f.get("value")), typed(f.get("highValue"))])
        elif op in ("IN", "NOT_IN"):
            values = [typed(v) for v in f.get("values") or []]
            where.append(f"{'not ' if op == 'NOT_IN' else ''}{column} in ({','.join('?' * len(values)) or 'null'})")
            args.extend(values)
        elif op in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
            where.append(f"{column} is {'not ' if op == 'HAS_PROPERTY' else ''}null")
        else:
            raise HubSpotError(400, f"Unsupported operator {op!r}")

    def search(self, request: Request, body: bytes) -> dict:
        try:
            query = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            raise HubSpotError(400, "Invalid input JSON on line 1") from None
        limit = self._limit(query.get("limit"), SEARCH_LIMIT, 10)
        groups = query.get("filterGroups") or []
        if len(groups) > 5 or sum(len(g.get("filters") or []) for g in groups) > 25:
            raise HubSpotError(400, "Too many filters: at most 5 filterGroups and 25 filters in total")
        clauses, args = [], []
        for g in groups:
            where: list[str] = []
            for f in g.get("filters") or []:
                self._filter(f, where, args)
            clauses.append("(" + (" and ".join(where) or "true") + ")")
        order = "deal_num"
        sorts = query.get("sorts") or []
        if sorts:
            s = sorts[0]
            s = {"propertyName": s[1:] if s.startswith("-") else s,
                 "direction": "DESCENDING" if s.startswith("-") else "ASCENDING"} if isinstance(s, str) else s
            if s.get("propertyName") not in FILTERABLE:
                raise HubSpotError(400, f"Unsupported sort property {s.get('propertyName')!r}")
            direction = "desc" if s.get("direction") == "DESCENDING" else "asc"
            order = f"{FILTERABLE[s['propertyName']][0]} {direction}, deal_num {direction}"
        where_sql = "not is_deleted and (" + (" or ".join(clauses) or "true") + ")"
        try:
            offset = int(query.get("after") or 0)
        except (TypeError, ValueError):
            raise HubSpotError(400, f"after: invalid value {query.get('after')!r}") from None
        if offset >= self.search_cap:
            raise HubSpotError(400, f"There was a problem with the request: the search API returns at most "
                                    f"{self.search_cap} results per query; narrow the filter.")
        key_parts = ("search", orjson.dumps([groups, sorts], option=orjson.OPT_SORT_KEYS), self.sandbox.clock)
        _, rows = self.pages.get(key_parts, lambda: self._rows(where_sql, args, order))
        if self.duplicate_page(request) and offset:
            offset = max(0, offset - limit // 2)
        page = rows[offset:offset + limit]
        out: dict[str, Any] = {"total": len(rows),
                               "results": self._render(page, self._properties(query.get("properties")))}
        if offset + limit < len(rows):
            out["paging"] = {"next": {"after": str(offset + limit)}}
        return out
