"""Shopify REST Admin API emulator: the sandbox world's shop, rendered as of the sandbox clock.

Paths are Shopify's own (`/admin/api/{YYYY-MM}/orders.json` …), so any REST client works against
it by swapping the shop URL.  What it reproduces, because clients break on it:

- **As-of-clock rendering.**  An order exists once `created_at <= clock`; its fulfilment,
  cancellation, refunds, edit-added lines and transactions appear only once their own time has
  passed, and `updated_at` is the latest of those event times.  Advancing the clock therefore
  makes new orders appear *and* moves old orders' `updated_at` (late refunds, edits), which is
  what an `updated_at_min` incremental sync must catch.
- **Money.**  Decimal strings.  The plain fields (`total_price`, line `price`, tax line `price`,
  refund `subtotal` …) are in the *shop* currency (GBP) exactly as Shopify documents them; every
  amount also has a `*_set` MoneyBag with `shop_money` and `presentment_money` (the buyer's
  currency).  Transactions are in the presentment currency.  Shop amounts of totals are the
  presentment total converted at the order's rate (Shopify converts each amount on its own), so
  a checkout's `total_price` equals the GBP amount of its Shopify Payments charge.
- **Statuses.**  `status` defaults to `open` (closed and cancelled orders are skipped unless the
  client asks for `any`).  An order is closed (archived) once it is cancelled, or — for orders
  paid at checkout — once fulfilled ("archive when paid and fulfilled", Shopify's default).
  Trade orders on payment terms are paid outside Shopify (Stripe / bank), so they stay
  `pending` and open; cancelled before payment they are `voided`.
- **Pagination.**  Cursor only, via `Link` headers carrying an opaque `page_info`; filters are
  baked into the cursor and sending any filter besides `limit`/`fields` with it is a 400.
  Result lists are computed once per (filters, clock) into the `PageCache`, so a walk sees one
  consistent snapshot and deep pages cost what the first does.
- **Order of results.**  Orders: newest first (`created_at DESC, id DESC`), or `id ASC` when
  `since_id` is given.  Payouts: `date DESC`; balance transactions: `processed_at DESC` — both as
  Shopify documents ("most recent first").
- **Rate limit.**  A leaky bucket per shop (Plus by default: 400 calls, 20/s leak; `plan=
  "standard"` gives 40, 2/s), the leak compressed by `config.time_scale`.  Every response carries
  `X-Shopify-Shop-Api-Call-Limit: used/size`; over the limit it is 429 with `Retry-After`.
- **Faults.**  Besides the base class's faults, `duplicate_page` makes `rel="next"` point at the
  page just served, once (the page is served twice; the loader must dedupe).

Lists are id lists computed once per (filters, clock) in DuckDB; a page of orders is rendered by
`render.py` from seven DuckDB queries restricted to the page's ids, never by scanning the world
in Python.
"""
from __future__ import annotations

import array
import hashlib
import hmac
import math
import re
from datetime import date, datetime, time, timezone
from typing import Any, Callable, Sequence
from urllib.parse import urlencode

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import LeakyBucket
from finance_pipeline.platforms.shopify import render
from finance_pipeline.platforms.shopify.render import SHOP_CURRENCY, SHOP_TZ, money, ts
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, PageCache, json_response
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import BUSINESS_TIMEZONE

SHOP_DOMAIN = "curtains-sandbox.myshopify.com"
SHOP_ID = 61_270_000_001
UTC = timezone.utc

# (bucket size, leak per second) per plan; B2B payment terms need Plus, so the sandbox shop is Plus
PLANS: dict[str, tuple[int, float]] = {
    "standard": (40, 2.0),
    "advanced": (80, 4.0),
    "plus": (400, 20.0),
}
CALL_LIMIT_HEADER = "X-Shopify-Shop-Api-Call-Limit"
DEFAULT_LIMIT, MAX_LIMIT = 50, 250
VERSION_RE = re.compile(r"^(\d{4}-\d{2}|unstable)$")

AUTH_ERROR = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
THROTTLED = {"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."}
NOT_FOUND = {"errors": "Not Found"}

SOURCE_OFFSET = render.SOURCE_OFFSET  # order transaction id -> Shopify Payments charge/refund id


class _Problem(Exception):
    """An API error answered with Shopify's error body."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


# ---------------------------------------------------------------------------------------- helpers
def _parse_time(name: str, value: str) -> datetime:
    """ISO 8601 with offset or `Z`; a value without offset is read in the shop's time zone.
    A space in the offset is a '+' some clients forgot to percent-encode."""
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()
    try:
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time(0))
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _Problem(400, {"errors": {name: "Invalid value."}}) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=SHOP_TZ)
    return parsed.astimezone(UTC)


def _parse_date(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise _Problem(400, {"errors": {name: "Invalid value."}}) from None


def _parse_int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _Problem(400, {"errors": {name: "Invalid value."}}) from None


def _limit(query) -> int:
    raw = query.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    n = _parse_int("limit", raw)
    if n < 1 or n > MAX_LIMIT:
        raise _Problem(400, {"errors": {"limit": f"must be between 1 and {MAX_LIMIT}"}})
    return n


def _fields(query) -> list[str] | None:
    raw = query.get("fields")
    if not raw:
        return None
    return [f.strip() for f in raw.split(",") if f.strip()]


def _pick(obj: dict, fields: list[str] | None) -> dict:
    return obj if not fields else {k: obj[k] for k in fields if k in obj}


def _id_window(filters: dict, column: str, where: list[str], params: dict) -> None:
    """`since_id` (ids above) and `last_id` (ids below), as the REST list endpoints take them."""
    for name, op in (("since_id", ">"), ("last_id", "<")):
        if name in filters:
            where.append(f"{column} {op} ${name}")
            params[name] = filters[name]


class ShopifyEmulator(Emulator):
    """The sandbox shop `curtains-sandbox.myshopify.com` (Shopify Plus, GBP, Europe/London)."""

    name = "shopify"
    plan = "plus"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None, plan: str | None = None) -> None:
        super().__init__(sandbox, config)
        self.plan = plan or self.plan
        size, leak = PLANS[self.plan]
        self.bucket = LeakyBucket(size, leak, self.config.time_scale)
        self._token: str | None = None
        self._graphql = None

    @property
    def graphql(self):
        """The GraphQL Admin API of this shop (`graphql_emulator.GraphQLAdmin`)."""
        if self._graphql is None:
            from finance_pipeline.platforms.shopify.graphql_emulator import GraphQLAdmin

            self._graphql = GraphQLAdmin(self)
        return self._graphql

    # ------------------------------------------------------------------ base class hooks
    def credentials(self) -> dict[str, str]:
        return {"shop": SHOP_DOMAIN, "access_token": self.access_token}

    @property
    def access_token(self) -> str:
        """`shpat_` + 32 hex characters, deterministic from the world seed."""
        if self._token is None:
            seed = self.sandbox.state().seed
            digest = hashlib.blake2b(f"shopify-admin-token:{seed}".encode(), digest_size=16).hexdigest()
            self._token = f"shpat_sandbox_{digest}"
        return self._token

    def rate_limit(self, request: Request) -> Response | None:
        wait = self.bucket.try_acquire()
        if wait <= 0 or not self.config.enforce_rate_limits:
            return None
        retry_after = max(wait, 1.0 / self.config.time_scale)
        return self.refuse(json_response(THROTTLED, 429, headers={
            "Retry-After": f"{retry_after:.3f}", CALL_LIMIT_HEADER: f"{int(self.bucket.capacity)}/{int(self.bucket.capacity)}",
        }))

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return json_response(THROTTLED, 429, headers={"Retry-After": f"{1.0 / self.config.time_scale:.3f}"})
        if status == 503:
            return json_response({"errors": "Unavailable Shop"}, 503)
        return json_response({"errors": "Internal Server Error"}, status)

    def routes(self) -> list[Route]:
        p = "/admin/api/{version}"
        return [
            Route(f"{p}/shop.json", self._endpoint(self.get_shop)),
            Route(f"{p}/orders.json", self._endpoint(self.list_orders)),
            Route(f"{p}/orders/count.json", self._endpoint(self.count_orders)),
            Route(f"{p}/orders/{{order_id:int}}.json", self._endpoint(self.get_order)),
            Route(f"{p}/orders/{{order_id:int}}/refunds.json", self._endpoint(self.list_refunds)),
            Route(f"{p}/orders/{{order_id:int}}/transactions.json", self._endpoint(self.list_transactions)),
            Route(f"{p}/shopify_payments/payouts.json", self._endpoint(self.list_payouts)),
            Route(f"{p}/shopify_payments/payouts/{{payout_id:int}}.json", self._endpoint(self.get_payout)),
            Route(f"{p}/shopify_payments/balance/transactions.json", self._endpoint(self.list_balance_transactions)),
            *self.graphql.routes(),  # POST {p}/graphql.json and the bulk operations' result files
        ]

    # ------------------------------------------------------------------ request plumbing
    def _endpoint(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """Version check, auth, rate limit, Shopify error bodies and the call-limit header.

        A plain (sync) function, so Starlette runs it in its thread pool: DuckDB work does not
        block the event loop and concurrent requests are served in parallel."""

        def endpoint(request: Request) -> Response:
            if not VERSION_RE.match(request.path_params.get("version", "")):
                return json_response(NOT_FOUND, 404)
            token = request.headers.get("x-shopify-access-token", "")
            if not hmac.compare_digest(token.encode(), self.access_token.encode()):
                return json_response(AUTH_ERROR, 401, headers={CALL_LIMIT_HEADER: self._call_limit(counted=False)})
            refused = self.rate_limit(request)
            if refused is not None:
                return refused
            try:
                response = handler(request)
            except _Problem as problem:
                response = json_response(problem.body, problem.status)
            response.headers[CALL_LIMIT_HEADER] = self._call_limit()
            return response

        return endpoint

    def _call_limit(self, counted: bool = True) -> str:
        """`used/size` as Shopify reports it, in whole calls (a counted call reports at least itself)."""
        used = math.ceil(self.bucket.level - 1e-9)
        return f"{max(used, 1) if counted else used}/{int(self.bucket.capacity)}"

    def _paged(self, request: Request, resource: str, parse_filters: Callable[[Any], dict],
               compute: Callable[[dict, datetime], Sequence[int]]) -> tuple[list[int], dict[str, str], int]:
        """Shopify's cursor pagination over a cached, ordered id list.

        Returns (ids of this page, response headers with `Link`, total).  The opaque `page_info`
        carries the cache key, the offset, the filters and the clock of the first request, so
        an evicted cache entry is recomputed to the same list."""
        query = request.query_params
        limit = _limit(query)
        fields = query.get("fields")
        if "page_info" in query:
            extra = [k for k in query.keys() if k not in ("page_info", "limit", "fields")]
            if extra:
                name = extra[0]
                raise _Problem(400, {"errors": {name: f"{name} cannot be passed when page_info is present. "
                                                      "See https://shopify.dev/api/usage/pagination-rest "
                                                      "for more information."}})
            try:
                cursor = PageCache.parse_token(query["page_info"])
                key, offset, filters = cursor["k"], int(cursor["o"]), cursor["f"]
                clock = datetime.fromisoformat(cursor["c"])
                if cursor["r"] != resource:
                    raise ValueError(resource)
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
                raise _Problem(400, {"errors": {"page_info": "Invalid value."}}) from None
            ids = self.pages.lookup(key)
            if ids is None:
                key, ids = self.pages.get((resource, orjson.dumps(filters, option=orjson.OPT_SORT_KEYS), cursor["c"]),
                                          lambda: compute(filters, clock))
        else:
            filters = parse_filters(query)
            clock = self.sandbox.clock
            offset = 0
            key, ids = self.pages.get((resource, orjson.dumps(filters, option=orjson.OPT_SORT_KEYS), clock.isoformat()),
                                      lambda: compute(filters, clock))
        page = list(ids[offset:offset + limit])

        def link(at: int) -> str:
            token = PageCache.token(key, at, {"r": resource, "f": filters, "c": clock.isoformat()})
            args = {"limit": limit, **({"fields": fields} if fields else {}), "page_info": token}
            return f"{request.url.scheme}://{request.url.netloc}{request.url.path}?{urlencode(args)}"

        links = []
        if offset > 0:
            links.append(f'<{link(max(0, offset - limit))}>; rel="previous"')
        if self.duplicate_page(request):
            links.append(f'<{link(offset)}>; rel="next"')  # the fault: the same page once more
        elif offset + limit < len(ids):
            links.append(f'<{link(offset + limit)}>; rel="next"')
        headers = {"Link": ", ".join(links)} if links else {}
        return page, headers, len(ids)

    # ------------------------------------------------------------------ shop
    def get_shop(self, request: Request) -> Response:
        return json_response({"shop": {
            "id": SHOP_ID, "name": "Curtains Sandbox", "myshopify_domain": SHOP_DOMAIN, "domain": SHOP_DOMAIN,
            "currency": SHOP_CURRENCY, "enabled_presentment_currencies": ["GBP", "EUR", "USD", "AUD"],
            "iana_timezone": BUSINESS_TIMEZONE, "timezone": "(GMT+00:00) Europe/London", "country_code": "GB",
            "plan_name": "shopify_plus" if self.plan == "plus" else self.plan, "taxes_included": True,
        }})

    # ------------------------------------------------------------------ orders: which ids
    def _order_filters(self, query) -> dict:
        status = query.get("status", "open")
        if status not in ("open", "closed", "cancelled", "any"):
            raise _Problem(400, {"errors": {"status": "Invalid value."}})
        out: dict[str, Any] = {"status": status}
        for name in ("created_at_min", "created_at_max", "updated_at_min", "updated_at_max",
                     "processed_at_min", "processed_at_max"):
            if query.get(name):
                out[name] = _parse_time(name, query[name]).isoformat()
        if query.get("since_id"):
            out["since_id"] = _parse_int("since_id", query["since_id"])
        if query.get("ids"):
            out["ids"] = [_parse_int("ids", x) for x in query["ids"].split(",") if x.strip()]
        return out

    def _order_ids(self, filters: dict, clock: datetime) -> Sequence[int]:
        """The ordered ids matching `filters` at `clock` (one DuckDB query; cached by `_paged`)."""
        where, params = ["TRUE"], {"clock": clock}
        if "ids" in filters:
            where.append("order_id IN (SELECT unnest($ids::BIGINT[]))")
            params["ids"] = filters["ids"] or [-1]
        _id_window(filters, "order_id", where, params)
        for name, op in (("created_at_min", ">="), ("created_at_max", "<="),
                         ("processed_at_min", ">="), ("processed_at_max", "<=")):
            if name in filters:  # processed_at = created_at: orders are processed when placed
                where.append(f"date_trunc('second', created_at) {op} ${name}")
                params[name] = datetime.fromisoformat(filters[name])
        outer = ["TRUE"]
        for name, op in (("updated_at_min", ">="), ("updated_at_max", "<=")):
            if name in filters:
                outer.append(f"updated_at_asof {op} ${name}")
                params[name] = datetime.fromisoformat(filters[name])
        status = filters["status"]
        if status == "open":
            outer.append("closed_at_asof IS NULL")
        elif status == "closed":
            outer.append("closed_at_asof IS NOT NULL")
        elif status == "cancelled":
            outer.append("cancelled_asof")
        order = "order_id ASC" if "since_id" in filters else "created_at DESC, order_id DESC"
        sql = (f"SELECT order_id FROM ({render.order_state_sql(' AND '.join(where))}) s "
               f"WHERE {' AND '.join(outer)} ORDER BY {order}")
        return array.array("q", (r[0] for r in self.db.execute(sql, params).fetchall()))

    # ------------------------------------------------------------------ orders: endpoints
    def list_orders(self, request: Request) -> Response:
        ids, headers, _ = self._paged(request, "orders", self._order_filters, self._order_ids)
        fields = _fields(request.query_params)
        orders = [_pick(o, fields) for o in self.render_orders(ids)]
        return json_response({"orders": orders}, headers=headers)

    def count_orders(self, request: Request) -> Response:
        filters = self._order_filters(request.query_params)
        clock = self.sandbox.clock
        _, ids = self.pages.get(("orders", orjson.dumps(filters, option=orjson.OPT_SORT_KEYS), clock.isoformat()),
                                lambda: self._order_ids(filters, clock))
        return json_response({"count": len(ids)})

    def get_order(self, request: Request) -> Response:
        orders = self.render_orders([request.path_params["order_id"]])
        if not orders:
            raise _Problem(404, NOT_FOUND)
        return json_response({"order": _pick(orders[0], _fields(request.query_params))})

    def list_refunds(self, request: Request) -> Response:
        orders = self.render_orders([request.path_params["order_id"]])
        if not orders:
            raise _Problem(404, NOT_FOUND)
        return json_response({"refunds": orders[0]["refunds"]})

    def list_transactions(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        clock = self.sandbox.clock
        db = self.db
        if not db.execute("SELECT count(*) FROM shopify_orders WHERE order_id = ? AND created_at <= ?",
                          [order_id, clock]).fetchone()[0]:
            raise _Problem(404, NOT_FOUND)
        return json_response({"transactions": render.render_transactions(db, order_id, clock)})

    def render_orders(self, ids: Sequence[int], clock: datetime | None = None) -> list[dict]:
        """The REST objects of orders `ids` as of the clock (a hook tests can wrap to corrupt one)."""
        return render.render_orders(self.db, ids, clock or self.sandbox.clock)

    # ------------------------------------------------------------------ Shopify Payments
    def _payout_filters(self, query) -> dict:
        out: dict[str, Any] = {}
        for name in ("date_min", "date_max", "date"):
            if query.get(name):
                out[name] = _parse_date(name, query[name]).isoformat()
        for name in ("since_id", "last_id"):
            if query.get(name):
                out[name] = _parse_int(name, query[name])
        if query.get("status"):
            out["status"] = query["status"]
        return out

    def _payout_ids(self, filters: dict, clock: datetime) -> Sequence[int]:
        where, params = ["visible_at <= $clock"], {"clock": clock}
        for name, op in (("date_min", ">="), ("date_max", "<="), ("date", "=")):
            if name in filters:
                where.append(f"payout_date {op} ${name}")
                params[name] = date.fromisoformat(filters[name])
        _id_window(filters, "payout_id", where, params)
        if filters.get("status", "paid") != "paid":  # every visible sandbox payout has landed
            where.append("FALSE")
        rows = self.db.execute(f"SELECT payout_id FROM shopify_payouts WHERE {' AND '.join(where)} "
                               "ORDER BY payout_date DESC, payout_id DESC", params).fetchall()
        return [r[0] for r in rows]

    def list_payouts(self, request: Request) -> Response:
        ids, headers, _ = self._paged(request, "payouts", self._payout_filters, self._payout_ids)
        payouts = self._render_payouts(ids)
        return json_response({"payouts": payouts}, headers=headers)

    def get_payout(self, request: Request) -> Response:
        payouts = self._render_payouts([request.path_params["payout_id"]], self.sandbox.clock)
        if not payouts:
            raise _Problem(404, NOT_FOUND)
        return json_response({"payout": payouts[0]})

    def _render_payouts(self, ids: Sequence[int], clock: datetime | None = None) -> list[dict]:
        if not ids:
            return []
        where = "payout_id IN (SELECT unnest(?::BIGINT[]))"
        params: list = [list(ids)]
        if clock is not None:
            where += " AND visible_at <= ?"
            params.append(clock)
        rows = self.db.execute(
            f"SELECT payout_id, payout_date, currency, amount, charges_gross, refunds_gross, fees "
            f"FROM shopify_payouts WHERE {where}", params).fetchall()
        out = {}
        for pid, pdate, ccy, amount, charges, refunds, fees in rows:
            out[pid] = {
                "id": pid, "status": "paid", "date": pdate.isoformat(), "currency": ccy, "amount": money(amount),
                "summary": {
                    "adjustments_fee_amount": "0.00", "adjustments_gross_amount": "0.00",
                    "charges_fee_amount": money(fees), "charges_gross_amount": money(charges),
                    "refunds_fee_amount": "0.00", "refunds_gross_amount": money(refunds),
                    "reserved_funds_fee_amount": "0.00", "reserved_funds_gross_amount": "0.00",
                    "retried_payouts_fee_amount": "0.00", "retried_payouts_gross_amount": "0.00",
                },
            }
        return [out[i] for i in ids if i in out]

    def _bt_filters(self, query) -> dict:
        out: dict[str, Any] = {}
        for name in ("payout_id", "since_id", "last_id"):
            if query.get(name):
                out[name] = _parse_int(name, query[name])
        if query.get("payout_status"):
            out["payout_status"] = query["payout_status"]
        if query.get("test"):
            out["test"] = query["test"]
        return out

    def _bt_ids(self, filters: dict, clock: datetime) -> Sequence[int]:
        where, params = ["b.processed_at <= $clock"], {"clock": clock}
        landed = "(p.visible_at IS NOT NULL AND p.visible_at <= $clock)"
        if "payout_id" in filters:
            where.append(f"b.payout_id = $payout_id AND {landed}")
            params["payout_id"] = filters["payout_id"]
        _id_window(filters, "b.bt_id", where, params)
        status = filters.get("payout_status")
        if status == "paid":
            where.append(landed)
        elif status == "pending":
            where.append(f"NOT {landed}")
        elif status is not None:
            where.append("FALSE")
        if filters.get("test") == "true":
            where.append("FALSE")
        rows = self.db.execute(
            f"SELECT b.bt_id FROM shopify_balance_transactions b LEFT JOIN shopify_payouts p ON p.payout_id = b.payout_id "
            f"WHERE {' AND '.join(where)} ORDER BY b.processed_at DESC, b.bt_id DESC", params).fetchall()
        return array.array("q", (r[0] for r in rows))

    def list_balance_transactions(self, request: Request) -> Response:
        ids, headers, _ = self._paged(request, "balance_transactions", self._bt_filters, self._bt_ids)
        clock = self.sandbox.clock
        rows = self.db.execute(
            "SELECT b.bt_id, b.type, b.order_id, b.txn_id, b.amount, b.fee, b.net, b.currency, b.processed_at, "
            "       b.payout_id, p.visible_at <= ? AS landed "
            "  FROM shopify_balance_transactions b LEFT JOIN shopify_payouts p ON p.payout_id = b.payout_id "
            " WHERE b.bt_id IN (SELECT unnest(?::BIGINT[]))", [clock, ids]).fetchall() if ids else []
        by_id = {}
        for bt_id, kind, order_id, txn_id, amount, fee, net, ccy, processed_at, payout_id, landed in rows:
            by_id[bt_id] = {
                "id": bt_id, "test": False, "type": kind,
                "payout_id": payout_id if landed else None, "payout_status": "paid" if landed else "pending",
                "currency": ccy, "amount": money(amount), "fee": money(fee), "net": money(net),
                "source_id": txn_id + SOURCE_OFFSET, "source_type": kind,
                "source_order_id": order_id, "source_order_transaction_id": txn_id,
                "processed_at": ts(processed_at), "adjustment_order_transactions": None,
            }
        body = {"transactions": [by_id[i] for i in ids if i in by_id]}
        return json_response(body, headers=headers)
