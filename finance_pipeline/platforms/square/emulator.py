"""Square Connect API v2 emulator: the London showroom's point of sale, as of the sandbox clock.

Paths, fields and errors follow Square's published OpenAPI contract (release 2025-08-20):

- `GET /v2/locations`, `GET /v2/catalog/list?types=ITEM_VARIATION`
- `GET /v2/payments` (ListPayments: `begin_time`/`end_time` on created_at, default one year back;
  `updated_at_begin_time`/`updated_at_end_time`; `sort_field` CREATED_AT | UPDATED_AT;
  `sort_order` default DESC; `location_id`, default the main location; `limit` <= 100), `GET
  /v2/payments/{id}`
- `GET /v2/refunds` (ListPaymentRefunds, same time filters, `status`, `source_type`)
- `POST /v2/orders/search` (SearchOrders: `location_ids` required, 1-10; `date_time_filter` on
  one of created_at / updated_at / closed_at, whose field `sort.sort_field` must name; `limit`
  default 500, max 1000), `GET /v2/orders/{id}`
- `GET /v2/payouts` (ListPayouts: `begin_time`/`end_time` on created_at, `status`, `location_id`),
  `GET /v2/payouts/{id}`, `GET /v2/payouts/{id}/payout-entries`

Money is `Money {amount: int pence, currency}`; timestamps RFC 3339 UTC with milliseconds.
Lists answer `{<items>: [...], "cursor": "..."}` with an opaque cursor; the cursor freezes the
query and the moment of the first page, so a walk sees one consistent snapshot.  Square
publishes no rate limit and sends no rate-limit headers; this sandbox refuses more than
`EMULATED_RATE_PER_S` requests per second (scaled by `time_scale`) with Square's 429 body
`{"errors": [{"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED", ...}]}`.  Faults come
from the base class; `duplicate_page` starts a page half a page early (the client must dedupe).

As of the clock: an order is OPEN from its creation until its last tender, then COMPLETED; a
card payment's `processing_fee` appears when Square has computed it (minutes after capture) and
bumps `updated_at`, as do refunds (`refunded_money`, `refund_ids`); a payout is SENT when created
and PAID on arrival.
"""
from __future__ import annotations

import hashlib
import logging
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import TokenBucket
from finance_pipeline.platforms.square import API_VERSION, EMULATED_RATE_PER_S, LOCATION_NAME
from finance_pipeline.platforms.square import webhooks
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, PageCache, json_response
from finance_pipeline.sandbox.store import Sandbox

log = logging.getLogger("finance_pipeline.sandbox.square")
UTC = timezone.utc
VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ONE_YEAR = timedelta(days=365)
CAPTURE_DELAY = timedelta(seconds=2)  # a card payment is captured (and last updated) this long after creation
ORDER_TIME_FIELDS = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "CLOSED_AT": "closed_at"}


class SquareError(Exception):
    """An error answered with Square's body: {"errors": [{"category", "code", "detail", "field"}]}."""

    def __init__(self, status: int, category: str, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = {"category": category, "code": code, "detail": detail}
        if field:
            self.error["field"] = field

    def response(self) -> Response:
        return json_response({"errors": [self.error]}, self.status)


def bad(code: str, detail: str, field: str | None = None) -> SquareError:
    return SquareError(400, "INVALID_REQUEST_ERROR", code, detail, field)


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_time(value: Any, field: str) -> datetime:
    """RFC 3339 (`Z` or an offset); a value without offset is UTC."""
    if not isinstance(value, str) or not value:
        raise bad("INVALID_TIME", f"Invalid timestamp for `{field}`.", field)
    text = value.strip().replace(" ", "+")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise bad("INVALID_TIME", f"Invalid timestamp `{value}` for `{field}`.", field) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def money(pence: int | None, currency: str = "GBP") -> dict | None:
    return None if pence is None else {"amount": int(pence), "currency": currency}


def _rows(cur) -> list[dict[str, Any]]:
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _limit(raw: Any, default: int, maximum: int, field: str = "limit") -> int:
    if raw is None or raw == "":
        return default
    try:
        n = int(raw)
    except (TypeError, ValueError):
        raise bad("INVALID_VALUE", f"Invalid `{field}`.", field) from None
    if n < 1:
        raise bad("INVALID_VALUE", f"`{field}` must be at least 1.", field)
    return min(n, maximum)  # Square ignores larger values


# --------------------------------------------------------------------------------- as-of queries
# Each query renders an entity as of `?` (the moment of the walk) and is filtered/sorted by callers.
PAYMENTS_SQL = """
select p.*,
       greatest(p.created_at + interval 2 second,
                case when p.fee_at <= $t then p.fee_at else p.created_at end,
                coalesce(r.last_refund, p.created_at)) as updated_at,
       coalesce(r.refunded, 0) as refunded, coalesce(r.refund_ids, []::varchar[]) as refund_ids,
       p.fee_at <= $t as fee_known
from square_payments p
left join (select payment_id, max(created_at) as last_refund, sum(amount) as refunded,
                  list(refund_id order by created_at, refund_id) as refund_ids
           from square_refunds where created_at <= $t group by payment_id) r using (payment_id)
where p.created_at <= $t
"""
REFUNDS_SQL = """
select r.*, r.created_at as updated_at, p.source_type as payment_source
from square_refunds r join square_payments p using (payment_id)
where r.created_at <= $t
"""
ORDERS_SQL = """
select o.*, case when o.closed_at <= $t then o.closed_at else o.created_at end as updated_now,
       case when o.closed_at <= $t then o.closed_at end as closed_now
from square_orders o
where o.created_at <= $t
"""
PAYOUTS_SQL = """
select po.*, case when po.paid_at <= $t then 'PAID' else 'SENT' end as status,
       case when po.paid_at <= $t then po.paid_at else po.created_at end as updated_at
from square_payouts po
where po.created_at <= $t
"""


class SquareEmulator(Emulator):
    """The sandbox seller: one location (the London showroom), GBP."""

    name = "square"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.seed = sandbox.state().seed
        digest = hashlib.blake2b(f"square:{self.seed}".encode(), digest_size=32).hexdigest()
        self.access_token = f"EAAAl{digest[:59]}"  # personal access tokens start with EAAA
        self.signature_key = digest[40:62]
        self.limiter = TokenBucket(EMULATED_RATE_PER_S, burst=EMULATED_RATE_PER_S, time_scale=self.config.time_scale)
        self.corruptions: dict[str, dict[str, Any]] = {}  # test hook: object id -> fields overridden on the wire
        self._location: dict | None = None

    # ------------------------------------------------------------------ base-class hooks
    def credentials(self) -> dict[str, str]:
        return {"access_token": self.access_token, "webhook_signature_key": self.signature_key}

    def rate_limit(self, request: Request) -> Response | None:
        if not self.config.enforce_rate_limits or self.limiter.try_acquire() <= 0:
            return None
        return self.refuse(SquareError(429, "RATE_LIMIT_ERROR", "RATE_LIMITED",
                                       "Rate limit exceeded. Reduce the rate of requests.").response())

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return SquareError(429, "RATE_LIMIT_ERROR", "RATE_LIMITED", "Rate limit exceeded.").response()
        if status == 503:
            return SquareError(503, "API_ERROR", "SERVICE_UNAVAILABLE", "Service unavailable.").response()
        return SquareError(status, "API_ERROR", "INTERNAL_SERVER_ERROR", "An internal error has occurred.").response()

    def routes(self) -> list[Route]:
        e = self._endpoint
        return [
            Route("/v2/locations", e(self.list_locations)),
            Route("/v2/catalog/list", e(self.list_catalog)),
            Route("/v2/payments", e(self.list_payments)),
            Route("/v2/payments/{id}", e(self.get_payment)),
            Route("/v2/refunds", e(self.list_refunds)),
            Route("/v2/refunds/{id}", e(self.get_refund)),
            Route("/v2/orders/search", e(self.search_orders), methods=["POST"]),
            Route("/v2/orders/{id}", e(self.get_order)),
            Route("/v2/payouts", e(self.list_payouts)),
            Route("/v2/payouts/{id}", e(self.get_payout)),
            Route("/v2/payouts/{id}/payout-entries", e(self.list_payout_entries)),
            Route("/{path:path}", self._unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ]

    # ------------------------------------------------------------------ plumbing
    def _endpoint(self, handler: Callable[..., Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            version = request.headers.get("square-version") or API_VERSION
            auth = request.headers.get("authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or token.strip() != self.access_token:
                return SquareError(401, "AUTHENTICATION_ERROR", "UNAUTHORIZED",
                                   "This request could not be authorized.").response()
            if not VERSION_RE.match(version):
                return bad("INVALID_SQUARE_VERSION_FORMAT",
                           f"Invalid Square-Version format '{version}'. Expected YYYY-MM-DD.").response()
            limited = self.rate_limit(request)
            if limited is not None:
                return limited
            try:
                body = None
                if request.method == "POST":
                    raw = await request.body()
                    try:
                        body = orjson.loads(raw) if raw else {}
                    except orjson.JSONDecodeError:
                        raise bad("INVALID_BODY", "Invalid JSON body.") from None
                    if not isinstance(body, dict):
                        raise bad("INVALID_BODY", "The request body must be a JSON object.")
                result = await run_in_threadpool(handler, request, body)
            except SquareError as err:
                return err.response()
            except Exception:  # an emulator bug: answer as Square would, keep the trace
                log.exception("square emulator: %s %s failed", request.method, request.url.path)
                return self.fault_response(500)
            return json_response(result, 200, {"Square-Version": version})

        return endpoint

    async def _unknown(self, request: Request) -> Response:
        return SquareError(404, "INVALID_REQUEST_ERROR", "NOT_FOUND",
                           f"Resource not found: {request.method} {request.url.path}").response()

    def _patch(self, obj: dict) -> dict:
        extra = self.corruptions.get(obj.get("id", ""))
        return {**obj, **extra} if extra else obj

    def location(self) -> dict:
        if self._location is None:
            (row,) = _rows(self.db.execute("select * from square_locations"))
            self._location = row
        return self._location

    def _now(self) -> datetime:
        return self.sandbox.clock

    def _walk(self, request: Request, kind: str, query: dict, compute: Callable[[dict, datetime], list],
              limit: int, cursor: str | None) -> tuple[list, str | None, datetime]:
        """One page of an ordered id list.  The cursor carries the query and the moment of the
        first page, so later pages come from the same snapshot even if the cache was evicted."""
        if cursor:
            try:
                token = PageCache.parse_token(cursor)
                query, at, offset = token["q"], datetime.fromisoformat(token["t"]), int(token["o"])
            except (ValueError, KeyError, TypeError):
                raise bad("INVALID_CURSOR", "The pagination cursor is not valid.", "cursor") from None
            if token.get("kind") != kind:
                raise bad("INVALID_CURSOR", "The pagination cursor is not valid for this endpoint.", "cursor")
        else:
            at, offset = self._now(), 0
        key, ids = self.pages.get((kind, orjson.dumps(query, option=orjson.OPT_SORT_KEYS), at.isoformat()),
                                  lambda: compute(query, at))
        if self.duplicate_page(request) and offset:
            offset = max(0, offset - limit // 2 - 1)
        page = ids[offset:offset + limit]
        nxt = None
        if offset + limit < len(ids):
            nxt = PageCache.token(key, offset + limit, {"q": query, "t": at.isoformat(), "kind": kind})
        return page, nxt, at

    # ------------------------------------------------------------------ locations, catalog
    def list_locations(self, request: Request, body: Any) -> dict:
        loc = self.location()
        return {"locations": [{
            "id": loc["location_id"], "name": LOCATION_NAME, "timezone": loc["timezone"], "status": "ACTIVE",
            "country": loc["country"], "currency": loc["currency"], "language_code": "en-GB",
            "type": "PHYSICAL", "business_name": "Curtains Sandbox Ltd", "created_at": ts(loc["created_at"]),
            "capabilities": ["CREDIT_CARD_PROCESSING"], "merchant_id": "ML" + loc["location_id"][1:],
            "address": {"address_line_1": "12 Pimlico Road", "locality": "London", "postal_code": "SW1W 8LJ",
                        "country": "GB"},
        }]}

    def list_catalog(self, request: Request, body: Any) -> dict:
        types = {t.strip().upper() for t in (request.query_params.get("types") or "ITEM_VARIATION").split(",")}
        unknown = types - {"ITEM", "ITEM_VARIATION", "CATEGORY", "DISCOUNT", "TAX", "MODIFIER", "MODIFIER_LIST", "IMAGE"}
        if unknown:
            raise bad("INVALID_ENUM_VALUE", f"Invalid value for `types`: {sorted(unknown)[0]}.", "types")

        def compute(query: dict, at: datetime) -> list:
            if "ITEM_VARIATION" not in query["types"]:
                return []
            return [r["variation_id"] for r in _rows(self.db.execute(
                "select variation_id from square_catalog order by variation_id"))]

        ids, cursor, _ = self._walk(request, "catalog", {"types": sorted(types)}, compute, 100,
                                    request.query_params.get("cursor"))
        rows = {r["variation_id"]: r for r in _rows(self.db.execute(
            "select * from square_catalog where variation_id = any(?)", [ids]))} if ids else {}
        objects = [self._patch({
            "type": "ITEM_VARIATION", "id": r["variation_id"], "updated_at": ts(r["updated_at"]), "version": 1,
            "is_deleted": False, "present_at_all_locations": True,
            "item_variation_data": {"item_id": r["item_id"], "name": r["variation_name"], "sku": r["sku"],
                                    "ordinal": 0, "pricing_type": "FIXED_PRICING",
                                    "price_money": money(r["price"]), "sellable": True, "stockable": True},
        }) for r in (rows[i] for i in ids)]
        return _page({"objects": objects}, cursor)

    # ------------------------------------------------------------------ payments
    def _time_window(self, params, begin: str, end: str, now: datetime, default_back: timedelta | None) -> tuple:
        lo = parse_time(params[begin], begin) if params.get(begin) else (now - default_back if default_back else None)
        hi = parse_time(params[end], end) if params.get(end) else None
        return lo, hi

    def _location_ok(self, location_id: str | None) -> bool:
        return location_id in (None, "", self.location()["location_id"])

    def list_payments(self, request: Request, body: Any) -> dict:
        qp = request.query_params
        sort_field = (qp.get("sort_field") or "CREATED_AT").upper()
        if sort_field not in ("CREATED_AT", "UPDATED_AT", "OFFLINE_CREATED_AT"):
            raise bad("INVALID_ENUM_VALUE", f"Invalid value for `sort_field`: {sort_field}.", "sort_field")
        order = _sort_order(qp.get("sort_order"))
        now = self._now()
        created_lo, created_hi = self._time_window(qp, "begin_time", "end_time", now, ONE_YEAR)
        updated_lo = parse_time(qp["updated_at_begin_time"], "updated_at_begin_time") if qp.get("updated_at_begin_time") else None
        updated_hi = parse_time(qp["updated_at_end_time"], "updated_at_end_time") if qp.get("updated_at_end_time") else None
        query = {"c0": _iso(created_lo), "c1": _iso(created_hi), "u0": _iso(updated_lo), "u1": _iso(updated_hi),
                 "sf": sort_field, "so": order, "loc": qp.get("location_id") or None,
                 "total": qp.get("total"), "last_4": qp.get("last_4"), "brand": qp.get("card_brand")}
        limit = _limit(qp.get("limit"), 100, 100)

        def compute(q: dict, at: datetime) -> list:
            if not self._location_ok(q["loc"]):
                return []
            where, args = _merge(_window("created_at", q["c0"], q["c1"]), _window("updated_at", q["u0"], q["u1"]))
            if q["total"]:
                where.append("amount = ?"), args.append(int(q["total"]))
            if q["last_4"]:
                where.append("last_4 = ?"), args.append(q["last_4"])
            if q["brand"]:
                where.append("card_brand = ?"), args.append(q["brand"].upper())
            col = "updated_at" if q["sf"] == "UPDATED_AT" else "created_at"
            sql = (f"select payment_id from ({PAYMENTS_SQL.replace('$t', '?')}) p "
                   f"where {' and '.join(where) or 'true'} order by {col} {q['so']}, payment_id {q['so']}")
            return [r[0] for r in self.db.execute(sql, [at] * 4 + args).fetchall()]

        ids, cursor, at = self._walk(request, "payments", query, compute, limit, qp.get("cursor"))
        return _page({"payments": self.render_payments(ids, at)}, cursor)

    def get_payment(self, request: Request, body: Any) -> dict:
        found = self.render_payments([request.path_params["id"]], self._now())
        if not found:
            raise SquareError(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", "Could not find payment.")
        return {"payment": found[0]}

    def render_payments(self, ids: list[str], at: datetime) -> list[dict]:
        if not ids:
            return []
        sql = f"select * from ({PAYMENTS_SQL.replace('$t', '?')}) p where payment_id = any(?)"
        rows = {r["payment_id"]: r for r in _rows(self.db.execute(sql, [at] * 4 + [ids]))}
        return [self._patch(render_payment(rows[i])) for i in ids if i in rows]

    # ------------------------------------------------------------------ refunds
    def list_refunds(self, request: Request, body: Any) -> dict:
        qp = request.query_params
        sort_field = (qp.get("sort_field") or "CREATED_AT").upper()
        if sort_field not in ("CREATED_AT", "UPDATED_AT"):
            raise bad("INVALID_ENUM_VALUE", f"Invalid value for `sort_field`: {sort_field}.", "sort_field")
        order = _sort_order(qp.get("sort_order"))
        now = self._now()
        created_lo, created_hi = self._time_window(qp, "begin_time", "end_time", now, ONE_YEAR)
        # ListPaymentRefunds: updated_at_begin_time defaults to begin_time
        updated_lo = parse_time(qp["updated_at_begin_time"], "updated_at_begin_time") \
            if qp.get("updated_at_begin_time") else created_lo
        updated_hi = parse_time(qp["updated_at_end_time"], "updated_at_end_time") if qp.get("updated_at_end_time") else None
        query = {"c0": _iso(created_lo), "c1": _iso(created_hi), "u0": _iso(updated_lo), "u1": _iso(updated_hi),
                 "sf": sort_field, "so": order, "loc": qp.get("location_id") or None,
                 "status": (qp.get("status") or "").upper() or None, "src": (qp.get("source_type") or "").upper() or None}
        limit = _limit(qp.get("limit"), 100, 100)

        def compute(q: dict, at: datetime) -> list:
            if not self._location_ok(q["loc"]):
                return []
            where, args = _merge(_window("created_at", q["c0"], q["c1"]), _window("updated_at", q["u0"], q["u1"]))
            if q["status"]:
                where.append("status = ?"), args.append(q["status"])
            if q["src"]:
                where.append("payment_source = ?"), args.append(q["src"])
            col = "updated_at" if q["sf"] == "UPDATED_AT" else "created_at"
            sql = (f"select refund_id from ({REFUNDS_SQL.replace('$t', '?')}) r "
                   f"where {' and '.join(where) or 'true'} order by {col} {q['so']}, refund_id {q['so']}")
            return [r[0] for r in self.db.execute(sql, [at] + args).fetchall()]

        ids, cursor, at = self._walk(request, "refunds", query, compute, limit, qp.get("cursor"))
        return _page({"refunds": self.render_refunds(ids, at)}, cursor)

    def get_refund(self, request: Request, body: Any) -> dict:
        found = self.render_refunds([request.path_params["id"]], self._now())
        if not found:
            raise SquareError(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", "Could not find refund.")
        return {"refund": found[0]}

    def render_refunds(self, ids: list[str], at: datetime) -> list[dict]:
        if not ids:
            return []
        sql = f"select * from ({REFUNDS_SQL.replace('$t', '?')}) r where refund_id = any(?)"
        rows = {r["refund_id"]: r for r in _rows(self.db.execute(sql, [at, ids]))}
        return [self._patch(render_refund(rows[i])) for i in ids if i in rows]

    # ------------------------------------------------------------------ orders
    def search_orders(self, request: Request, body: dict) -> dict:
        cursor = body.get("cursor")
        limit = _limit(body.get("limit"), 500, 1000)
        location_ids = body.get("location_ids")
        if not cursor:
            if not isinstance(location_ids, list) or not location_ids:
                raise bad("MISSING_REQUIRED_PARAMETER", "Field must be set", "location_ids")
            if len(location_ids) > 10:
                raise bad("INVALID_ARRAY_LENGTH", "`location_ids` must contain at most 10 elements.", "location_ids")
        query_obj = body.get("query") or {}
        flt = query_obj.get("filter") or {}
        sort = query_obj.get("sort") or {}
        dtf = flt.get("date_time_filter") or {}
        if len(dtf) > 1:
            raise bad("INVALID_VALUE", "Only one of created_at, updated_at and closed_at may be set.",
                      "query.filter.date_time_filter")
        sort_field = (sort.get("sort_field") or "CREATED_AT").upper()
        if sort_field not in ORDER_TIME_FIELDS:
            raise bad("INVALID_ENUM_VALUE", f"Invalid value for `sort_field`: {sort_field}.", "query.sort.sort_field")
        time_field, window = None, {}
        if dtf:
            (time_field, window), = dtf.items()
            if time_field.upper() != sort_field:
                raise bad("INVALID_VALUE", f"`sort_field` must be {time_field.upper()} when filtering on "
                          f"`{time_field}`.", "query.sort.sort_field")
        states = [s.upper() for s in ((flt.get("state_filter") or {}).get("states") or [])]
        query = {
            "locs": sorted(location_ids or []), "tf": time_field,
            "lo": _iso(parse_time(window["start_at"], "start_at")) if window.get("start_at") else None,
            "hi": _iso(parse_time(window["end_at"], "end_at")) if window.get("end_at") else None,
            "sf": sort_field, "so": _sort_order(sort.get("sort_order")), "states": states,
        }

        def compute(q: dict, at: datetime) -> list:
            if self.location()["location_id"] not in q["locs"]:
                return []
            col = {"created_at": "created_at", "updated_at": "updated_now", "closed_at": "closed_now"}
            where, args = [], []
            if q["tf"]:
                where, args = _window(col[q["tf"]], q["lo"], q["hi"], inclusive_end=True)
            if q["states"]:
                where.append("(case when closed_now is null then 'OPEN' else 'COMPLETED' end) = any(?)")
                args.append(q["states"])
            sort_col = col[ORDER_TIME_FIELDS[q["sf"]]]
            sql = (f"select order_id from ({ORDERS_SQL.replace('$t', '?')}) o where {' and '.join(where) or 'true'} "
                   f"order by {sort_col} {q['so']} nulls last, order_id {q['so']}")
            return [r[0] for r in self.db.execute(sql, [at, at, at] + args).fetchall()]

        ids, nxt, at = self._walk(request, "orders", query, compute, limit, cursor)
        if body.get("return_entries"):
            rows = {r["order_id"]: r for r in _rows(self.db.execute(
                f"select * from ({ORDERS_SQL.replace('$t', '?')}) o where order_id = any(?)", [at] * 3 + [ids]))}
            entries = [{"order_id": i, "location_id": rows[i]["location_id"], "version": _order_version(rows[i])}
                       for i in ids]
            return _page({"order_entries": entries}, nxt)
        return _page({"orders": self.render_orders(ids, at)}, nxt)

    def get_order(self, request: Request, body: Any) -> dict:
        found = self.render_orders([request.path_params["id"]], self._now())
        if not found:
            raise SquareError(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", "Could not find order.")
        return {"order": found[0]}

    def render_orders(self, ids: list[str], at: datetime) -> list[dict]:
        if not ids:
            return []
        db = self.db
        rows = {r["order_id"]: r for r in _rows(db.execute(
            f"select * from ({ORDERS_SQL.replace('$t', '?')}) o where order_id = any(?)", [at] * 3 + [ids]))}
        lines: dict[str, list] = {}
        for r in _rows(db.execute("select * from square_order_lines where order_id = any(?) order by position", [ids])):
            lines.setdefault(r["order_id"], []).append(r)
        returns: dict[str, list] = {}
        for r in _rows(db.execute("select * from square_return_lines where order_id = any(?) order by position", [ids])):
            returns.setdefault(r["order_id"], []).append(r)
        tenders: dict[str, list] = {}
        for r in _rows(db.execute("""select * from square_payments where order_id = any(?) and created_at <= ?
                                     and status = 'COMPLETED' order by created_at""", [ids, at])):
            tenders.setdefault(r["order_id"], []).append(r)
        refunds: dict[str, list] = {}
        for r in _rows(db.execute("""select r.*, p.order_id as source_order_id from square_refunds r
                                     join square_payments p using (payment_id)
                                     where r.order_id = any(?) and r.created_at <= ?""", [ids, at])):
            refunds.setdefault(r["order_id"], []).append(r)
        return [self._patch(render_order(rows[i], lines.get(i, []), returns.get(i, []), tenders.get(i, []),
                                         refunds.get(i, []), at))
                for i in ids if i in rows]

    # ------------------------------------------------------------------ payouts
    def list_payouts(self, request: Request, body: Any) -> dict:
        qp = request.query_params
        now = self._now()
        lo, hi = self._time_window(qp, "begin_time", "end_time", now, ONE_YEAR)
        status = (qp.get("status") or "").upper() or None
        if status and status not in ("SENT", "FAILED", "PAID"):
            raise bad("INVALID_ENUM_VALUE", f"Invalid value for `status`: {status}.", "status")
        query = {"lo": _iso(lo), "hi": _iso(hi), "status": status, "so": _sort_order(qp.get("sort_order")),
                 "loc": qp.get("location_id") or None}
        limit = _limit(qp.get("limit"), 100, 100)

        def compute(q: dict, at: datetime) -> list:
            if not self._location_ok(q["loc"]):
                return []
            where, args = _window("created_at", q["lo"], q["hi"])
            if q["status"]:
                where.append("status = ?"), args.append(q["status"])
            sql = (f"select payout_id from ({PAYOUTS_SQL.replace('$t', '?')}) po where {' and '.join(where) or 'true'} "
                   f"order by created_at {q['so']}, payout_id {q['so']}")
            return [r[0] for r in self.db.execute(sql, [at, at, at] + args).fetchall()]

        ids, cursor, at = self._walk(request, "payouts", query, compute, limit, qp.get("cursor"))
        return _page({"payouts": self.render_payouts(ids, at)}, cursor)

    def get_payout(self, request: Request, body: Any) -> dict:
        found = self.render_payouts([request.path_params["id"]], self._now())
        if not found:
            raise SquareError(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", "Could not find payout.")
        return {"payout": found[0]}

    def render_payouts(self, ids: list[str], at: datetime) -> list[dict]:
        if not ids:
            return []
        rows = {r["payout_id"]: r for r in _rows(self.db.execute(
            f"select * from ({PAYOUTS_SQL.replace('$t', '?')}) po where payout_id = any(?)", [at] * 3 + [ids]))}
        return [self._patch(render_payout(rows[i])) for i in ids if i in rows]

    def list_payout_entries(self, request: Request, body: Any) -> dict:
        qp = request.query_params
        payout = request.path_params["id"]
        now = self._now()
        exists = self.db.execute("select 1 from square_payouts where payout_id = ? and created_at <= ?",
                                 [payout, now]).fetchone()
        if not exists and not qp.get("cursor"):
            raise SquareError(404, "INVALID_REQUEST_ERROR", "NOT_FOUND", "Could not find payout.")
        order = _sort_order(qp.get("sort_order"))
        limit = _limit(qp.get("limit"), 100, 100)

        def compute(q: dict, at: datetime) -> list:
            return [r[0] for r in self.db.execute(
                f"select entry_id from square_payout_entries where payout_id = ? order by position {q['so']}",
                [q["payout"]]).fetchall()]

        ids, cursor, at = self._walk(request, "payout_entries", {"payout": payout, "so": order}, compute, limit,
                                     qp.get("cursor"))
        rows = {r["entry_id"]: r for r in _rows(self.db.execute(
            "select * from square_payout_entries where entry_id = any(?)", [ids]))} if ids else {}
        return _page({"payout_entries": [self._patch(render_entry(rows[i])) for i in ids]}, cursor)

    # ------------------------------------------------------------------ webhooks
    def events(self, since: datetime, until: datetime) -> list[dict]:
        """Webhook events of the world between two moments, each carrying its object as it was then:
        payment.created / payment.updated (fee computed, refunded), refund.created, order.created /
        order.updated (summary only, as Square sends it), payout.sent / payout.paid."""
        db = self.db
        merchant = "ML" + self.location()["location_id"][1:]
        happened: list[tuple[datetime, str, str, str]] = []
        for r in _rows(db.execute("select payment_id, created_at, fee_at from square_payments "
                                  "where created_at > ? and created_at <= ? or fee_at > ? and fee_at <= ?",
                                  [since, until, since, until])):
            if since < r["created_at"] <= until:
                happened.append((r["created_at"], "payment.created", "payment", r["payment_id"]))
            if r["fee_at"] is not None and since < r["fee_at"] <= until:
                happened.append((r["fee_at"], "payment.updated", "payment", r["payment_id"]))
        for r in _rows(db.execute("select refund_id, payment_id, created_at from square_refunds "
                                  "where created_at > ? and created_at <= ?", [since, until])):
            happened.append((r["created_at"], "refund.created", "refund", r["refund_id"]))
            happened.append((r["created_at"], "payment.updated", "payment", r["payment_id"]))
        for r in _rows(db.execute("select order_id, created_at, closed_at from square_orders "
                                  "where created_at > ? and created_at <= ? or closed_at > ? and closed_at <= ?",
                                  [since, until, since, until])):
            if since < r["created_at"] <= until:
                happened.append((r["created_at"], "order.created", "order", r["order_id"]))
            if r["closed_at"] != r["created_at"] and since < r["closed_at"] <= until:
                happened.append((r["closed_at"], "order.updated", "order", r["order_id"]))
        for r in _rows(db.execute("select payout_id, created_at, paid_at from square_payouts "
                                  "where created_at > ? and created_at <= ? or paid_at > ? and paid_at <= ?",
                                  [since, until, since, until])):
            if since < r["created_at"] <= until:
                happened.append((r["created_at"], "payout.sent", "payout", r["payout_id"]))
            if since < r["paid_at"] <= until:
                happened.append((r["paid_at"], "payout.paid", "payout", r["payout_id"]))
        out = []
        for at, kind, obj_type, obj_id in sorted(happened):
            if obj_type == "payment":
                obj = {"payment": self.render_payments([obj_id], at)[0]}
            elif obj_type == "refund":
                obj = {"refund": self.render_refunds([obj_id], at)[0]}
            elif obj_type == "payout":
                obj = {"payout": self.render_payouts([obj_id], at)[0]}
            else:
                (o,) = self.render_orders([obj_id], at)
                key = "order_created" if kind == "order.created" else "order_updated"
                obj = {key: {"order_id": o["id"], "version": o["version"], "location_id": o["location_id"],
                             "state": o["state"], "created_at": o["created_at"], "updated_at": o["updated_at"]}}
            event_id = str(uuid.UUID(bytes=hashlib.blake2b(f"{self.seed}:{kind}:{obj_id}:{at.isoformat()}".encode(),
                                                           digest_size=16).digest(), version=4))
            out.append({"merchant_id": merchant, "type": kind, "event_id": event_id, "created_at": ts(at),
                        "data": {"type": obj_type, "id": obj_id, "object": obj}})
        return out

    def webhook_delivery(self, event: dict, notification_url: str, retry: int = 0) -> tuple[dict[str, str], bytes]:
        """(headers, body) of a delivery of `event` to `notification_url`, signed as Square signs it."""
        body = orjson.dumps(event)
        headers = {"Content-Type": "application/json",
                   webhooks.SIGNATURE_HEADER: webhooks.sign(notification_url, body, self.signature_key),
                   "Square-Environment": "Sandbox", "User-Agent": "Square Connect v2"}
        if retry:
            headers.update({"Square-Retry-Number": str(retry), "Square-Retry-Reason": "http_timeout",
                            "Square-Initial-Delivery-Timestamp": event["created_at"]})
        return headers, body


# ------------------------------------------------------------------------------------- rendering
def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _sort_order(raw: Any) -> str:
    value = (raw or "DESC").upper()
    if value not in ("ASC", "DESC"):
        raise bad("INVALID_ENUM_VALUE", f"Invalid value for `sort_order`: {raw}.", "sort_order")
    return value


def _window(column: str, lo: str | None, hi: str | None, inclusive_end: bool = False) -> tuple[list, list]:
    """Begin inclusive; end exclusive on the list endpoints, inclusive on SearchOrders."""
    where, args = [], []
    if lo:
        where.append(f"{column} >= ?::timestamptz")
        args.append(lo)
    if hi:
        where.append(f"{column} {'<=' if inclusive_end else '<'} ?::timestamptz")
        args.append(hi)
    return where, args


def _merge(*parts: tuple[list, list]) -> tuple[list, list]:
    return [w for p in parts for w in p[0]], [a for p in parts for a in p[1]]


def _page(body: dict, cursor: str | None) -> dict:
    if cursor:
        body["cursor"] = cursor
    return body


def _order_version(row: dict) -> int:
    """Square bumps an order's version on every update: created (1), paid and closed (2)."""
    return 1 if row["closed_now"] is None or row["kind"] == "return" else 2


def render_payment(r: dict) -> dict:
    status = r["status"]
    card = r["source_type"] == "CARD"
    obj: dict[str, Any] = {
        "id": r["payment_id"], "created_at": ts(r["created_at"]), "updated_at": ts(r["updated_at"]),
        "amount_money": money(r["amount"]), "total_money": money(r["amount"]),
        "status": status, "source_type": r["source_type"], "location_id": r["location_id"],
        "order_id": r["order_id"], "receipt_number": r["payment_id"][:4],
        "receipt_url": f"https://squareupsandbox.com/receipt/preview/{r['payment_id']}",
        "delay_action": "CANCEL", "delay_duration": "PT168H",
        "application_details": {"square_product": "SQUARE_POS", "application_id": "sq0idp-sandbox-pos"},
        "version_token": hashlib.blake2b(f"{r['payment_id']}:{r['updated_at']}".encode(), digest_size=12).hexdigest(),
    }
    if r["customer_id"]:
        obj["customer_id"] = r["customer_id"]
    if status in ("COMPLETED", "CANCELED"):
        obj["approved_money"] = money(r["amount"])
    if r["refunded"]:
        obj["refunded_money"] = money(r["refunded"])
        obj["refund_ids"] = list(r["refund_ids"])
    if card:
        obj["card_details"] = {
            "status": {"COMPLETED": "CAPTURED", "FAILED": "FAILED", "CANCELED": "VOIDED"}[status],
            "card": {"card_brand": r["card_brand"], "last_4": r["last_4"], "exp_month": 11, "exp_year": 2029,
                     "card_type": "DEBIT" if r["last_4"] < "5000" else "CREDIT", "prepaid_type": "NOT_PREPAID",
                     "bin": "453275"},
            "entry_method": r["entry_method"], "cvv_status": "CVV_NOT_CHECKED", "avs_status": "AVS_NOT_CHECKED",
            "statement_description": "SQ *CURTAINS SANDBOX",
            "card_payment_timeline": {"authorized_at": ts(r["created_at"] + CAPTURE_DELAY / 2)},
        }
        if status == "COMPLETED":
            obj["card_details"]["card_payment_timeline"]["captured_at"] = ts(r["created_at"] + CAPTURE_DELAY)
        if status == "CANCELED":
            obj["card_details"]["card_payment_timeline"]["voided_at"] = ts(r["created_at"] + CAPTURE_DELAY)
        if status == "FAILED":
            obj["card_details"]["errors"] = [{"category": "PAYMENT_METHOD_ERROR", "code": r["failure_code"],
                                              "detail": "Authorization error: 'GENERIC_DECLINE'"}]
        if status == "COMPLETED" and r["fee"] is not None and r["fee_known"]:
            obj["processing_fee"] = [{"effective_at": ts(r["fee_at"]), "type": "INITIAL",
                                      "amount_money": money(r["fee"])}]
    else:
        given = r["cash_given"] if r["cash_given"] is not None else r["amount"]
        obj["cash_details"] = {"buyer_supplied_money": money(given), "change_back_money": money(given - r["amount"])}
    return obj


def render_refund(r: dict) -> dict:
    return {
        "id": r["refund_id"], "status": r["status"], "amount_money": money(r["amount"]),
        "payment_id": r["payment_id"], "order_id": r["order_id"], "location_id": r["location_id"],
        "reason": r["reason"], "created_at": ts(r["created_at"]), "updated_at": ts(r["updated_at"]),
        "destination_type": r["destination_type"],
    }


def _line_money(r: dict, tax_uid: str, discount_uid: str | None) -> dict:
    out = {"base_price_money": money(r["base_price"]), "total_tax_money": money(r["tax"]),
           "total_discount_money": money(r["discount"]), "total_money": money(r["total"]),
           "applied_taxes": [{"uid": r["uid"] + "-t", "tax_uid": tax_uid, "applied_money": money(r["tax"])}]}
    if discount_uid and r["discount"]:
        out["applied_discounts"] = [{"uid": r["uid"] + "-d", "discount_uid": discount_uid,
                                     "applied_money": money(r["discount"])}]
    return out


def render_order(o: dict, lines: list[dict], returns: list[dict], tenders: list[dict], refunds: list[dict],
                 at: datetime) -> dict:
    closed = o["closed_now"]
    tax_uid, discount_uid = "vat-20", ("showroom-10" if o["discount_name"] else None)
    obj: dict[str, Any] = {
        "id": o["order_id"], "location_id": o["location_id"], "source": {"name": "Square Point of Sale"},
        "created_at": ts(o["created_at"]), "updated_at": ts(o["updated_now"]),
        "state": "COMPLETED" if closed is not None else "OPEN", "version": _order_version(o),
    }
    if closed is not None:
        obj["closed_at"] = ts(closed)
    if o["customer_id"]:
        obj["customer_id"] = o["customer_id"]
    if o["ticket"]:
        obj["ticket_name"] = o["ticket"]
    if o["kind"] == "sale":
        total = sum(l["total"] for l in lines)
        tax = sum(l["tax"] for l in lines)
        discount = sum(l["discount"] for l in lines)
        obj["line_items"] = [{
            "uid": l["uid"], "name": l["name"], "quantity": str(l["quantity"]), "catalog_object_id": l["variation_id"],
            "catalog_version": 1, "variation_name": l["variation_name"], "item_type": "ITEM",
            "gross_sales_money": money(l["gross_sales"]), "variation_total_price_money": money(l["gross_sales"]),
            **_line_money(l, tax_uid, discount_uid),
        } for l in lines]
        obj["taxes"] = [{"uid": tax_uid, "name": "VAT", "percentage": "20", "type": "INCLUSIVE", "scope": "ORDER",
                         "applied_money": money(tax)}]
        if discount_uid:
            obj["discounts"] = [{"uid": discount_uid, "name": o["discount_name"], "percentage": "10",
                                 "type": "FIXED_PERCENTAGE", "scope": "ORDER", "applied_money": money(discount)}]
        obj.update({"total_money": money(total), "total_tax_money": money(tax), "total_discount_money": money(discount),
                    "total_tip_money": money(0), "total_service_charge_money": money(0),
                    "net_amounts": {"total_money": money(total), "tax_money": money(tax),
                                    "discount_money": money(discount), "tip_money": money(0),
                                    "service_charge_money": money(0)}})
        obj["tenders"] = [{
            "id": t["payment_id"], "location_id": t["location_id"], "transaction_id": o["order_id"],
            "created_at": ts(t["created_at"]), "amount_money": money(t["amount"]), "type": t["source_type"],
            "payment_id": t["payment_id"],
            **({"customer_id": t["customer_id"]} if t["customer_id"] else {}),
            **({"card_details": {"status": "CAPTURED", "entry_method": t["entry_method"],
                                 "card": {"card_brand": t["card_brand"], "last_4": t["last_4"]}}}
               if t["source_type"] == "CARD" else
               {"cash_details": {"buyer_tendered_money": money(t["cash_given"]),
                                 "change_back_money": money(t["cash_given"] - t["amount"])}}),
        } for t in tenders]
    else:
        total = sum(r["total"] for r in returns)
        tax = sum(r["tax"] for r in returns)
        discount = sum(r["discount"] for r in returns)
        obj["returns"] = [{
            "uid": o["order_id"][:10] + "-ret", "source_order_id": o["source_order_id"],
            "return_line_items": [{
                "uid": r["uid"], "name": r["name"], "quantity": str(r["quantity"]),
                "catalog_object_id": r["variation_id"], "catalog_version": 1, "variation_name": r["variation_name"],
                "item_type": "ITEM", "source_line_item_uid": r["source_line_uid"],
                "gross_return_money": money(r["gross_return"]), "variation_total_price_money": money(r["gross_return"]),
                **_line_money(r, tax_uid, None),
            } for r in returns],
            "return_taxes": [{"uid": tax_uid, "name": "VAT", "percentage": "20", "type": "INCLUSIVE",
                              "scope": "ORDER", "applied_money": money(tax)}],
        }]
        obj.update({"total_money": money(0), "total_tax_money": money(0), "total_discount_money": money(0),
                    "return_amounts": {"total_money": money(total), "tax_money": money(tax),
                                       "discount_money": money(discount), "tip_money": money(0),
                                       "service_charge_money": money(0)},
                    "net_amounts": {"total_money": money(-total), "tax_money": money(-tax),
                                    "discount_money": money(-discount), "tip_money": money(0),
                                    "service_charge_money": money(0)}})
        obj["refunds"] = [{"id": r["refund_id"], "location_id": r["location_id"], "transaction_id": r["source_order_id"],
                           "tender_id": r["payment_id"], "created_at": ts(r["created_at"]), "reason": r["reason"],
                           "amount_money": money(r["amount"]), "status": "APPROVED"} for r in refunds]
    return obj


def render_payout(r: dict) -> dict:
    return {
        "id": r["payout_id"], "status": r["status"], "location_id": r["location_id"],
        "created_at": ts(r["created_at"]), "updated_at": ts(r["updated_at"]),
        "amount_money": money(r["amount"], r["currency"]),
        "destination": {"type": "BANK_ACCOUNT", "id": "bact:sandbox-lloyds-0001"},
        "version": 2 if r["status"] == "PAID" else 1, "type": "BATCH",
        "arrival_date": r["arrival_date"].isoformat(),
        "end_to_end_id": "L2100000005" + r["payout_id"][3:11].upper(),
    }


def render_entry(r: dict) -> dict:
    obj = {
        "id": r["entry_id"], "payout_id": r["payout_id"], "effective_at": ts(r["effective_at"]), "type": r["type"],
        "gross_amount_money": money(r["gross"], r["currency"]), "fee_amount_money": money(r["fee"], r["currency"]),
        "net_amount_money": money(r["net"], r["currency"]),
    }
    if r["type"] == "CHARGE":
        obj["type_charge_details"] = {"payment_id": r["payment_id"]}
    elif r["type"] == "REFUND":
        obj["type_refund_details"] = {"payment_id": r["payment_id"], "refund_id": r["refund_id"]}
    return obj
