"""Stripe REST v1, served from the sandbox world as of the sandbox clock.

Paths are Stripe's own (`/v1/charges` …), so the official SDK works against this server with only
its base address changed.  What a client sees:

- **Time.**  Objects exist once `created <= clock`.  A charge's `amount_refunded` / `refunded` /
  `disputed` reflect refunds and disputes up to the clock; a dispute is `needs_response` for its
  first five days (evidence then goes in), `under_review` until it closes, then `won` / `lost`;
  a balance transaction is `pending` until `available_on`; a payout is `in_transit` until its
  `arrival_date`, then `paid`.
- **Events** are derived from the same timestamps (charge.succeeded/failed, charge.refunded,
  refund.created, charge.dispute.created/updated/closed, payout.created/paid), each carrying its
  object as it was at that moment; ids are deterministic; only the last 30 days are served.
- **Lists**: `{"object": "list", "data": [...], "has_more": ..., "url": ...}`, newest first
  (`created` desc, id desc on ties), `limit` 1-100 (default 10), `starting_after` /
  `ending_before` by object id.  Every object a list query matches is rendered once per
  (filters, clock) by one DuckDB query and kept in the `PageCache` as an Arrow table; a page is
  a slice of it, so deep pages cost what the first one does.
- **Auth**: Bearer key or HTTP Basic with the key as user; 401 with Stripe's error body.
- **Rate limit**: 25 requests/s (test mode) through a `TokenBucket` scaled by `time_scale`;
  429 `rate_limit` with `Stripe-Should-Retry: true` (Stripe sends no `Retry-After`).
- **Writes**: `POST /v1/refunds` (form-encoded) with `Idempotency-Key` semantics.  Refunds created
  this way live in the emulator's memory, retrievable by id; they do not enter the world (the
  truth the oracle reads), so list endpoints do not show them.
- **Faults** (base class) plus `duplicate_page`: the page starts half a page before the cursor,
  so a client sees some objects twice and must dedupe on id.

Test hook: `corruptions[object_id] = {field: value}` overrides fields of that object on the wire.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import TokenBucket
from finance_pipeline.platforms.stripe import API_VERSION, EVENT_RETENTION_S, TEST_RATE_PER_S
from finance_pipeline.platforms.stripe import webhooks
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox

UTC = timezone.utc
log = logging.getLogger("finance_pipeline.sandbox.stripe")
EVIDENCE_SUBMITTED_AFTER = timedelta(days=5)  # needs_response -> under_review
EVIDENCE_DUE_AFTER = timedelta(days=7)
MAX_LIMIT = 100
DEFAULT_LIMIT = 10
RANGE_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# events whose payload carries `data.previous_attributes` (the fields that changed)
PREVIOUS_ATTRIBUTE_EVENTS = frozenset({"charge.refunded", "charge.dispute.updated", "charge.dispute.closed"})


class StripeError(Exception):
    """An error answered with Stripe's body: {"error": {"type", "code", "message", "param"}}."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type, "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.body["param"] = param
        self.headers = headers or {}

    def response(self, request_id: str) -> Response:
        return json_response({"error": self.body}, self.status, {"Request-Id": request_id, **self.headers})


def missing(kind: str, object_id: str, param: str = "id", status: int = 404) -> StripeError:
    return StripeError(status, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


# ---------------------------------------------------------------------------------- parameters
_KEY = re.compile(r"^([A-Za-z0-9_]+)((?:\[[^\[\]]*\])*)$")


def decode_params(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracket encoding -> nested values.

    `created[gte]=1` -> {"created": {"gte": "1"}}; `expand[]=a` and `expand[0]=a` -> {"expand": ["a"]};
    `metadata[k]=v` -> {"metadata": {"k": "v"}}.  Values stay strings (typed by each endpoint)."""
    out: dict[str, Any] = {}
    for raw_key, value in pairs:
        m = _KEY.match(raw_key)
        if not m:
            raise StripeError(400, f"Invalid parameter name: {raw_key}", code="parameter_unknown", param=raw_key)
        name, rest = m.group(1), m.group(2)
        parts = re.findall(r"\[([^\[\]]*)\]", rest)
        if not parts:
            out[name] = value
            continue
        if len(parts) > 1:
            raise StripeError(400, f"Invalid parameter name: {raw_key}", param=raw_key)
        sub = parts[0]
        if sub == "" or sub.isdigit():
            current = out.setdefault(name, [])
            if not isinstance(current, list):
                raise StripeError(400, f"Invalid array: {name}", param=name)
            current.append(value)
        else:
            current = out.setdefault(name, {})
            if not isinstance(current, dict):
                raise StripeError(400, f"Invalid hash: {name}", param=name)
            current[sub] = value
    return out


def _int(value: Any, param: str) -> int:
    try:
        if isinstance(value, (dict, list)):
            raise ValueError
        return int(str(value))
    except ValueError:
        raise StripeError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param) from None


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise StripeError(400, f"Invalid string: {value!r}", code="parameter_invalid_string", param=param)
    return value


def range_filter(column: str, value: Any, param: str, sql: list[str], args: list[Any]) -> None:
    """`created=<int>` or `created[gt|gte|lt|lte]=<int>` (Unix seconds) on a TIMESTAMPTZ column."""
    if isinstance(value, dict):
        for op, v in value.items():
            if op not in RANGE_OPS:
                raise StripeError(400, f"Received unknown parameter: {param}[{op}]", code="parameter_unknown",
                                  param=f"{param}[{op}]")
            sql.append(f"{column} {RANGE_OPS[op]} to_timestamp(?)")
            args.append(_int(v, f"{param}[{op}]"))
    else:
        sql.append(f"{column} = to_timestamp(?)")
        args.append(_int(value, param))


def _first_after(created: list[int], ids: list[str], key: tuple[int, str]) -> int:
    """Index of the first element ordered after `key` in a (created desc, id desc) list."""
    lo, hi = 0, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if (created[mid], ids[mid]) >= key:  # still newer (or the same): the answer lies to the right
            lo = mid + 1
        else:
            hi = mid
    return lo


@dataclass
class OrderedList:
    """The result of one list query, newest first: ids, their `created` (Unix seconds), and the
    rows pages are rendered from (an Arrow table of the rendering query, or event tuples)."""

    ids: list[str]
    created: list[int]
    rows: Any
    pos: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pos = {object_id: i for i, object_id in enumerate(self.ids)}


@dataclass(frozen=True)
class Kind:
    """One Stripe object type and the world table behind it."""

    name: str  # Stripe's object name ("charge")
    path: str  # "/v1/charges"
    table: str
    id_col: str
    params: frozenset[str]  # accepted list filters besides limit/cursors/expand
    expandable: frozenset[str] = frozenset()


KINDS = {
    "charge": Kind("charge", "/v1/charges", "stripe_charges", "charge_id",
                   frozenset({"created", "customer", "payment_intent", "transfer_group"}),
                   frozenset({"balance_transaction", "refunds", "customer"})),
    "refund": Kind("refund", "/v1/refunds", "stripe_refunds", "refund_id",
                   frozenset({"created", "charge", "payment_intent"}),
                   frozenset({"balance_transaction", "charge"})),
    "dispute": Kind("dispute", "/v1/disputes", "stripe_disputes", "dispute_id",
                    frozenset({"created", "charge", "payment_intent"}), frozenset({"charge"})),
    "balance_transaction": Kind("balance_transaction", "/v1/balance_transactions", "stripe_balance_transactions",
                                "bt_id", frozenset({"created", "type", "source", "currency", "payout"})),
    "payout": Kind("payout", "/v1/payouts", "stripe_payouts", "payout_id",
                   frozenset({"created", "arrival_date", "status", "destination"}),
                   frozenset({"balance_transaction"})),
    "customer": Kind("customer", "/v1/customers", "stripe_customers", "id",
                     frozenset({"created", "email"})),
}

# One query per object type renders objects as of a moment.  It reads `req`: the object's own
# row (every column of its world table) plus `as_of` (render as of when) and `ord` (order asked).
# A list builds `req` straight from its filtered table (no join back); lookups by id join ids to it.


def req_by_ids(kind: Kind) -> str:
    return (f"with ids as (select unnest(?::varchar[]) as id, unnest(?::timestamptz[]) as as_of, "
            f"unnest(range(?)) as ord), "
            f"req as (select t.*, ids.as_of, ids.ord from ids join {kind.table} t on t.{kind.id_col} = ids.id "
            f"where t.created <= ids.as_of) ")


def req_for_list(kind: Kind, where: list[str]) -> str:
    return (f"with req as (select t.*, ?::timestamptz as as_of, "
            f"row_number() over (order by t.created desc, t.{kind.id_col} desc) - 1 as ord "
            f"from {kind.table} t where {' and '.join(where)}) ")


RENDER_SQL: dict[str, tuple[str, list[Any]]] = {
    "charge": ("""
        select req.ord as _ord, req.charge_id as _id, req.*, epoch(req.created)::bigint as created_s,
               cu.email as customer_email, cu.name as customer_name,
               coalesce((select sum(r.amount) from stripe_refunds r
                         where r.charge_id = req.charge_id and r.created <= req.as_of), 0)::bigint as refunded_now,
               exists (select 1 from stripe_disputes d
                       where d.charge_id = req.charge_id and d.created <= req.as_of) as disputed_now
        from req left join stripe_customers cu on cu.id = req.customer""", []),
    "refund": ("""
        select req.ord as _ord, req.refund_id as _id, req.*, epoch(req.created)::bigint as created_s,
               c.payment_intent
        from req join stripe_charges c on c.charge_id = req.charge_id""", []),
    "dispute": ("""
        select req.ord as _ord, req.dispute_id as _id, req.*, epoch(req.created)::bigint as created_s,
               c.payment_intent, epoch(req.created + to_seconds(?))::bigint as due_by,
               case when req.closed_at <= req.as_of then req.outcome
                    when req.created + to_seconds(?) <= req.as_of then 'under_review'
                    else 'needs_response' end as status_now,
               req.created + to_seconds(?) <= req.as_of as has_evidence
        from req join stripe_charges c on c.charge_id = req.charge_id""",
        [int(EVIDENCE_DUE_AFTER.total_seconds()), int(EVIDENCE_SUBMITTED_AFTER.total_seconds()),
         int(EVIDENCE_SUBMITTED_AFTER.total_seconds())]),
    "balance_transaction": ("""
        select req.ord as _ord, req.bt_id as _id, req.bt_id, req.type, req.reporting_category, req.source,
               req.amount, req.fee, req.net, req.currency, req.exchange_rate::double as exchange_rate,
               req.description, epoch(req.created)::bigint as created_s,
               epoch(req.available_on)::bigint as available_s, req.available_on <= req.as_of as available
        from req""", []),
    "payout": ("""
        select req.ord as _ord, req.payout_id as _id, req.*, epoch(req.created)::bigint as created_s,
               epoch(req.arrival_date)::bigint as arrival_s, req.arrival_date <= req.as_of as arrived
        from req""", []),
    "customer": ("""
        select req.ord as _ord, req.id as _id, req.*, epoch(req.created)::bigint as created_s
        from req""", []),
}

EVENTS_SQL = """
with ev as (
    select 'charge.' || case when status = 'succeeded' then 'succeeded' else 'failed' end as type,
           'charge' as kind, charge_id as oid, charge_id as src, created as occurred from stripe_charges
    union all select 'charge.refunded', 'charge', charge_id, refund_id, created from stripe_refunds
    union all select 'refund.created', 'refund', refund_id, refund_id, created from stripe_refunds
    union all select 'charge.dispute.created', 'dispute', dispute_id, dispute_id, created from stripe_disputes
    union all select 'charge.dispute.updated', 'dispute', dispute_id, dispute_id,
                     created + to_seconds(?) from stripe_disputes
    union all select 'charge.dispute.closed', 'dispute', dispute_id, dispute_id, closed_at from stripe_disputes
    union all select 'payout.created', 'payout', payout_id, payout_id, created from stripe_payouts
    union all select 'payout.paid', 'payout', payout_id, payout_id, arrival_date from stripe_payouts
)
select 'evt_' || substr(md5(? || ':' || type || ':' || src), 1, 24) as id, type, kind, oid,
       epoch(occurred)::bigint as created, occurred
from ev
where occurred <= ? and occurred > ?
"""


class StripeEmulator(Emulator):
    name = "stripe"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.seed = sandbox.state().seed
        digest = hashlib.blake2b(f"stripe:{self.seed}".encode(), digest_size=24).hexdigest()
        self.api_key = f"sk_test_sandbox_{digest[:24]}"
        self.webhook_secret = f"whsec_{digest[24:48]}"
        self.limiter = TokenBucket(TEST_RATE_PER_S, burst=TEST_RATE_PER_S, time_scale=self.config.time_scale)
        self.corruptions: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[str, tuple[str, int, bytes]] = {}
        self._write_lock = threading.Lock()
        self.posted_refunds: dict[str, dict[str, Any]] = {}
        self._request_seq = 0

    # -- base-class hooks ----------------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        return {"api_key": self.api_key, "webhook_secret": self.webhook_secret}

    def rate_limit(self, request: Request) -> Response | None:
        if not self.config.enforce_rate_limits or self.limiter.try_acquire() <= 0:
            return None
        err = StripeError(429, "Too many requests hit the API too quickly. We recommend an exponential "
                               "backoff of your requests.", code="rate_limit",
                          headers={"Stripe-Should-Retry": "true", "Stripe-Rate-Limited-Reason": "global-rate"})
        return self.refuse(err.response(self._request_id()))

    def fault_response(self, status: int) -> Response:
        if status == 429:
            err = StripeError(429, "Too many requests hit the API too quickly. We recommend an exponential "
                                   "backoff of your requests.", code="rate_limit",
                              headers={"Stripe-Should-Retry": "true"})
        else:
            err = StripeError(status, "An unknown error occurred", type="api_error")
        return err.response(self._request_id())

    def routes(self) -> list[Route]:
        routes = [
            Route("/v1/events", self._endpoint(self.list_events)),
            Route("/v1/events/{id}", self._endpoint(self.retrieve_event)),
            Route("/v1/refunds", self._endpoint(self.create_refund), methods=["POST"]),
        ]
        for kind in KINDS.values():
            routes.append(Route(kind.path, self._endpoint(self._lister(kind))))
            routes.append(Route(kind.path + "/{id}", self._endpoint(self._retriever(kind))))
        routes.append(Route("/{path:path}", self._unknown_route,
                            methods=["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD"]))
        return routes

    # -- request plumbing --------------------------------------------------------------------------
    def _request_id(self) -> str:
        self._request_seq += 1
        return "req_" + hashlib.blake2b(f"{self.seed}:{self._request_seq}".encode(), digest_size=7).hexdigest()

    def _authenticate(self, request: Request) -> StripeError | None:
        header = request.headers.get("authorization", "")
        key = None
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            key = value.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(value.strip()).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            return StripeError(401, "You did not provide an API key. You need to provide your API key in the "
                                    "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                                    "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
                                    "details, or we can help at https://support.stripe.com/.",
                               headers={"WWW-Authenticate": 'Bearer realm="Stripe"'})
        if key != self.api_key:
            shown = f"{key[:8]}{'*' * 12}{key[-4:]}" if len(key) > 12 else "***"
            return StripeError(401, f"Invalid API Key provided: {shown}",
                               headers={"WWW-Authenticate": 'Bearer realm="Stripe"'})
        return None

    def _endpoint(self, handler: Callable[..., Any]) -> Callable[[Request], Any]:
        """Auth, rate limit, parameter decoding and error rendering around a (blocking) handler."""

        async def endpoint(request: Request) -> Response:
            request_id = self._request_id()
            headers = {"Request-Id": request_id,
                       "Stripe-Version": request.headers.get("stripe-version", API_VERSION)}
            denied = self._authenticate(request)
            if denied is not None:
                return denied.response(request_id)
            limited = self.rate_limit(request)
            if limited is not None:
                return limited
            try:
                if request.method == "POST":
                    raw = (await request.body()).decode()
                    params = decode_params(parse_qsl(raw, keep_blank_values=True))
                else:
                    params = decode_params(request.query_params.multi_items())
                result = await run_in_threadpool(handler, request, params)
            except StripeError as err:
                return err.response(request_id)
            except Exception:  # a bug in the emulator: answer as Stripe would, keep the trace in the log
                log.exception("stripe emulator: %s %s failed", request.method, request.url.path)
                return StripeError(500, "An unknown error occurred", type="api_error").response(request_id)
            if isinstance(result, Response):
                for k, v in headers.items():
                    result.headers.setdefault(k, v)
                return result
            return json_response(result, 200, headers)

        return endpoint

    async def _unknown_route(self, request: Request) -> Response:
        err = StripeError(404, f"Unrecognized request URL ({request.method}: {request.url.path}). Please see "
                               "https://stripe.com/docs or we can help at https://support.stripe.com/.")
        return err.response(self._request_id())

    # -- list machinery ------------------------------------------------------------------------------
    @staticmethod
    def _expand(params: dict[str, Any], kind: Kind, *, in_list: bool) -> set[str]:
        raw = params.get("expand", [])
        if isinstance(raw, str):
            raw = [raw]
        out = set()
        for item in raw:
            name = item[5:] if in_list and item.startswith("data.") else item
            if name not in kind.expandable:
                raise StripeError(400, f"This property cannot be expanded ({item}).", param="expand")
            out.add(name)
        return out

    def _check_params(self, params: dict[str, Any], allowed: Iterable[str]) -> None:
        known = {"limit", "starting_after", "ending_before", "expand", *allowed}
        for name in params:
            if name not in known:
                raise StripeError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)

    def _page(self, ordered: OrderedList, params: dict[str, Any], kind: Kind | None, duplicate: bool,
              clock: datetime) -> tuple[int, int, bool]:
        """Where the page lies in the ordered list, by limit and cursor -> (start, end, has_more)."""
        limit = _int(params.get("limit", DEFAULT_LIMIT), "limit")
        if not 1 <= limit <= MAX_LIMIT:
            raise StripeError(400, f"This value must be greater than or equal to 1 and less than or equal to "
                                   f"{MAX_LIMIT}.", code="parameter_invalid_integer", param="limit")
        after, before = params.get("starting_after"), params.get("ending_before")
        if after is not None and before is not None:
            raise StripeError(400, "You may only specify one of these parameters: ending_before, starting_after.")
        if before is not None:
            end = self._position(ordered, _str(before, "ending_before"), kind, "ending_before", clock, after=False)
            start = max(0, end - limit)
            return start, end, start > 0
        start = 0
        if after is not None:
            start = self._position(ordered, _str(after, "starting_after"), kind, "starting_after", clock, after=True)
            if duplicate:
                # the injected `duplicate_page` fault: this page repeats the end of the previous one
                start = max(0, start - max(1, limit // 2))
        end = min(start + limit, len(ordered.ids))
        return start, end, end < len(ordered.ids)

    def _position(self, ordered: OrderedList, object_id: str, kind: Kind | None, param: str,
                  clock: datetime, *, after: bool) -> int:
        """Where a cursor object sits in the list (it may be filtered out of it, but must exist)."""
        i = ordered.pos.get(object_id)
        if i is not None:
            return i + 1 if after else i
        created = self._created_of(kind, object_id, clock) if kind is not None else None
        if created is None:
            raise missing(kind.name if kind else "event", object_id, param=param, status=400)
        return _first_after(ordered.created, ordered.ids, (created, object_id))

    def _created_of(self, kind: Kind, object_id: str, clock: datetime) -> int | None:
        row = self.db.execute(
            f"select epoch(created)::bigint from {kind.table} where {kind.id_col} = ? and created <= ?",
            [object_id, clock]).fetchone()
        return row[0] if row else None

    def _listed(self, kind: Kind, where: list[str], args: list[Any], clock: datetime) -> OrderedList:
        """Every object a list query matches, rendered as of the clock, newest first: computed in
        DuckDB once per (query, clock) and kept in the page cache as an Arrow table."""
        req = req_for_list(kind, where)
        req_args = [clock, *args]

        def compute() -> OrderedList:
            sql, extra = RENDER_SQL[kind.name]
            table = self.db.sql(f"{req} {sql} order by req.ord", params=[*req_args, *extra]).to_arrow_table()
            return OrderedList(table.column("_id").to_pylist(), table.column("created_s").to_pylist(), table)

        key = (kind.name, req, tuple(map(str, req_args)), str(self.sandbox.world_path()))
        return self.pages.get(key, compute)[1]

    def _lister(self, kind: Kind) -> Callable[[Request, dict[str, Any]], dict[str, Any]]:
        def handler(request: Request, params: dict[str, Any]) -> dict[str, Any]:
            self._check_params(params, kind.params)
            expand = self._expand(params, kind, in_list=True)
            clock = self.sandbox.clock
            where, args = self._filters(kind, params, clock)
            listed = self._listed(kind, where, args, clock)
            start, end, has_more = self._page(listed, params, kind, self.duplicate_page(request), clock)
            objects = self._objects(kind.name, listed.rows.slice(start, end - start).to_pylist())
            self._finish(kind.name, [(obj, clock) for obj in objects], expand)
            return {"object": "list", "data": objects, "has_more": has_more, "url": kind.path}

        return handler

    def _filters(self, kind: Kind, params: dict[str, Any], clock: datetime) -> tuple[list[str], list[Any]]:
        where, args = ["t.created <= ?"], [clock]
        for name, value in params.items():
            if name in ("limit", "starting_after", "ending_before", "expand", "destination"):
                continue
            if name in ("created", "arrival_date"):
                range_filter(f"t.{name}", value, name, where, args)
            elif name == "payout":
                payout_id = _str(value, name)
                if self._created_of(KINDS["payout"], payout_id, clock) is None:
                    raise missing("payout", payout_id, param="payout", status=400)
                where.append("t.payout_id = ?")
                args.append(payout_id)
            elif name == "status":  # payouts: the status as of the clock
                where.append("(case when t.arrival_date <= ? then 'paid' else 'in_transit' end) = ?")
                args += [clock, _str(value, name)]
            elif name == "currency":
                where.append("t.currency = lower(?)")
                args.append(_str(value, name))
            elif name in ("customer", "type", "source", "email"):
                where.append(f"t.{name} = ?")
                args.append(_str(value, name))
            elif name == "charge":
                where.append("t.charge_id = ?")
                args.append(_str(value, name))
            elif name == "payment_intent":
                if kind.name == "charge":
                    where.append("t.payment_intent = ?")
                else:
                    where.append("t.charge_id in (select charge_id from stripe_charges where payment_intent = ?)")
                args.append(_str(value, name))
            elif name == "transfer_group":
                where.append("false")  # no charge in the world belongs to a transfer group
        return where, args

    def _retriever(self, kind: Kind) -> Callable[[Request, dict[str, Any]], Any]:
        def handler(request: Request, params: dict[str, Any]) -> dict[str, Any]:
            self._check_params(params, ())
            expand = self._expand(params, kind, in_list=False)
            object_id = request.path_params["id"]
            clock = self.sandbox.clock
            if kind.name == "refund" and object_id in self.posted_refunds:
                return self.posted_refunds[object_id]
            found = self.render(kind.name, [object_id], clock, expand)
            if not found:
                raise missing(kind.name, object_id)
            return found[0]

        return handler

    # -- rendering -----------------------------------------------------------------------------------
    def render(self, kind: str, ids: list[str], as_of: datetime | list[datetime],
               expand: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Objects of `kind` by id as they were at `as_of` (one instant, or one per id), in the
        order asked; ids that do not exist (yet) are left out."""
        return [obj for obj in self.render_aligned(kind, ids, as_of, expand) if obj is not None]

    def render_aligned(self, kind: str, ids: list[str], as_of: datetime | list[datetime],
                       expand: Iterable[str] = ()) -> list[dict[str, Any] | None]:
        """Like `render`, but one entry per id asked (None where it does not exist)."""
        if not ids:
            return []
        moments = as_of if isinstance(as_of, list) else [as_of] * len(ids)
        sql, extra = RENDER_SQL[kind]
        cur = self.db.execute(f"{req_by_ids(KINDS[kind])} {sql} order by req.ord", [ids, moments, len(ids), *extra])
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r)) for r in cur.fetchall()]
        out: list[dict[str, Any] | None] = [None] * len(ids)
        for row, obj in zip(rows, self._objects(kind, rows)):
            out[row["_ord"]] = obj
        self._finish(kind, [(obj, moments[i]) for i, obj in enumerate(out) if obj is not None], expand)
        return out

    def _objects(self, kind: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows of the rendering query -> Stripe objects (same order)."""
        return getattr(self, f"_{kind}_objects")(rows)

    def _finish(self, kind: str, pairs: list[tuple[dict, datetime]], expand: Iterable[str]) -> None:
        """Expansions (as of each object's moment), then the test hook's corruptions."""
        for name in expand:
            self._apply_expand(kind, name, pairs)
        for obj, _ in pairs:
            patch = self.corruptions.get(obj["id"])
            if patch:
                obj.update(patch)

    def _charge_objects(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            ok = r["status"] == "succeeded"
            n = r["seq"]
            out.append({
                "id": r["charge_id"], "object": "charge", "amount": r["amount"],
                "amount_captured": r["amount"] if ok else 0, "amount_refunded": r["refunded_now"],
                "application_fee_amount": None, "balance_transaction": r["balance_transaction"],
                "billing_details": {
                    "address": {"city": None, "country": r["card_country"], "line1": None, "line2": None,
                                "postal_code": None, "state": None},
                    "email": r["customer_email"], "name": r["customer_name"], "phone": None},
                "calculated_statement_descriptor": "CURTAINS WHOLESALE",
                "captured": ok, "created": r["created_s"], "currency": r["currency"], "customer": r["customer"],
                "description": f"Invoice {r['invoice_number']}", "disputed": r["disputed_now"],
                "failure_code": r["failure_code"], "failure_message": r["failure_message"], "livemode": False,
                "metadata": {"order_id": str(r["order_id"]), "order_name": r["order_name"],
                             "invoice_number": r["invoice_number"]},
                "outcome": _outcome(ok, r["failure_code"]),
                "paid": ok, "payment_intent": r["payment_intent"],
                "payment_method": "pm_" + r["charge_id"][3:],
                "payment_method_details": {"card": {
                    "brand": ("visa", "mastercard", "amex")[n % 3], "country": r["card_country"],
                    "exp_month": 1 + n % 12, "exp_year": 2027 + n % 4, "funding": "credit",
                    "last4": f"{(n * 7919) % 10000:04d}"}, "type": "card"},
                "receipt_email": r["customer_email"], "refunded": ok and r["refunded_now"] >= r["amount"],
                "statement_descriptor": None, "status": r["status"], "transfer_group": None,
            })
        return out

    def _refund_objects(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{
            "id": r["refund_id"], "object": "refund", "amount": r["amount"],
            "balance_transaction": r["balance_transaction"], "charge": r["charge_id"], "created": r["created_s"],
            "currency": r["currency"], "metadata": {}, "payment_intent": r["payment_intent"], "reason": r["reason"],
            "receipt_number": None, "source_transfer_reversal": None, "status": r["status"],
            "transfer_reversal": None,
        } for r in rows]

    def _dispute_objects(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # the balance transactions a dispute carries (withdrawal; reinstatement once won)
        bt_ids, bt_moments = [], []
        for r in rows:
            for bt in (r["bt_open"], r["bt_close"]):
                if bt:
                    bt_ids.append(bt)
                    bt_moments.append(r["as_of"])
        bts = {bt["id"]: bt for bt in self.render("balance_transaction", bt_ids, bt_moments)} if bt_ids else {}
        return [{
            "id": r["dispute_id"], "object": "dispute", "amount": r["amount"],
            "balance_transactions": [bts[b] for b in (r["bt_open"], r["bt_close"]) if b and b in bts],
            "charge": r["charge_id"], "created": r["created_s"], "currency": r["currency"],
            "evidence_details": {"due_by": r["due_by"], "has_evidence": bool(r["has_evidence"]),
                                 "past_due": False, "submission_count": int(bool(r["has_evidence"]))},
            "is_charge_refundable": False, "livemode": False, "metadata": {},
            "payment_intent": r["payment_intent"], "reason": r["reason"], "status": r["status_now"],
        } for r in rows]

    def _balance_transaction_objects(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in rows:
            fee_details = []
            if r["fee"]:
                fee_details.append({
                    "amount": r["fee"], "application": None, "currency": r["currency"],
                    "description": "Dispute fee" if r["type"] == "adjustment" else "Stripe processing fees",
                    "type": "stripe_fee"})
            out.append({
                "id": r["bt_id"], "object": "balance_transaction", "amount": r["amount"],
                "available_on": r["available_s"], "created": r["created_s"], "currency": r["currency"],
                "description": r["description"], "exchange_rate": r["exchange_rate"], "fee": r["fee"],
                "fee_details": fee_details, "net": r["net"], "reporting_category": r["reporting_category"],
                "source": r["source"], "status": "available" if r["available"] else "pending", "type": r["type"],
            })
        return out

    def _payout_objects(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        destination = "ba_" + hashlib.blake2b(f"{self.seed}:bank".encode(), digest_size=12).hexdigest()[:24]
        return [{
            "id": r["payout_id"], "object": "payout", "amount": r["amount"], "arrival_date": r["arrival_s"],
            "automatic": True, "balance_transaction": r["balance_transaction"], "created": r["created_s"],
            "currency": r["currency"], "description": "STRIPE PAYOUT", "destination": destination,
            "failure_balance_transaction": None, "failure_code": None, "failure_message": None,
            "livemode": False, "metadata": {}, "method": r["method"], "original_payout": None,
            "reconciliation_status": "completed" if r["arrived"] else "in_progress", "reversed_by": None,
            "source_type": "card", "statement_descriptor": None,
            "status": "paid" if r["arrived"] else "in_transit", "type": r["type"],
        } for r in rows]

    def _customer_objects(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{
            "id": r["id"], "object": "customer", "address": None, "balance": 0, "created": r["created_s"],
            "currency": (r["currency"] or "").lower() or None, "delinquent": False, "description": None,
            "email": r["email"], "livemode": False, "metadata": {"customer_id": r["customer_id"]},
            "name": r["name"], "phone": None,
        } for r in rows]

    def _apply_expand(self, kind: str, name: str, pairs: list[tuple[dict, datetime]]) -> None:
        """Replace the id in field `name` by the object it names (as of the same moment)."""
        if name == "refunds":  # a charge's refunds: a list object, only when expanded (since 2022-11-15)
            for obj, moment in pairs:
                rows = self.db.execute(
                    "select refund_id from stripe_refunds where charge_id = ? and created <= ? "
                    "order by created desc, refund_id desc", [obj["id"], moment]).fetchall()
                obj["refunds"] = {"object": "list", "data": self.render("refund", [r[0] for r in rows], moment),
                                  "has_more": False, "url": f"/v1/charges/{obj['id']}/refunds"}
            return
        refs = [(obj, moment) for obj, moment in pairs if isinstance(obj.get(name), str)]
        found = self.render_aligned(name, [obj[name] for obj, _ in refs], [moment for _, moment in refs])
        for (obj, _), target in zip(refs, found):
            if target is not None:
                obj[name] = target

    # -- events --------------------------------------------------------------------------------------
    def _events_window(self, clock: datetime) -> tuple[str, list[Any]]:
        return EVENTS_SQL, [int(EVIDENCE_SUBMITTED_AFTER.total_seconds()), str(self.seed), clock,
                            clock - timedelta(seconds=EVENT_RETENTION_S)]

    def list_events(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        self._check_params(params, ("created", "type", "types", "delivery_success"))
        if "expand" in params:
            raise StripeError(400, f"This property cannot be expanded ({params['expand']}).", param="expand")
        clock = self.sandbox.clock
        sql, args = self._events_window(clock)
        where: list[str] = []
        if "created" in params:
            range_filter("occurred", params["created"], "created", where, args)
        if "type" in params and "types" in params:
            raise StripeError(400, "You may not specify both `type` and `types`.", param="types")
        if "type" in params:
            pattern = _str(params["type"], "type")
            if "*" in pattern:
                where.append("type like ?")
                args.append(pattern.replace("%", r"\%").replace("_", r"\_").replace("*", "%"))
            else:
                where.append("type = ?")
                args.append(pattern)
        if "types" in params:
            types = params["types"] if isinstance(params["types"], list) else [params["types"]]
            if len(types) > 20:
                raise StripeError(400, "You may pass at most 20 types.", param="types")
            where.append(f"type in ({', '.join('?' * len(types))})")
            args += types
        full = (f"select id, type, kind, oid, created, occurred from ({sql}) e "
                f"{'where ' + ' and '.join(where) if where else ''} order by created desc, id desc")

        def compute() -> OrderedList:
            rows = self.db.execute(full, args).fetchall()
            return OrderedList([r[0] for r in rows], [r[4] for r in rows], rows)

        listed = self.pages.get(("event", full, tuple(map(str, args)), str(self.sandbox.world_path())), compute)[1]
        start, end, has_more = self._page(listed, params, None, self.duplicate_page(request), clock)
        return {"object": "list", "data": self._event_objects(listed.rows[start:end]), "has_more": has_more,
                "url": "/v1/events"}

    def retrieve_event(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        self._check_params(params, ())
        event_id = request.path_params["id"]
        sql, args = self._events_window(self.sandbox.clock)
        rows = self.db.execute(f"select id, type, kind, oid, created, occurred from ({sql}) e where id = ?",
                               [*args, event_id]).fetchall()
        found = self._event_objects(rows)
        if not found:
            raise missing("event", event_id)
        return found[0]

    def _event_objects(self, rows: list[tuple]) -> list[dict[str, Any]]:
        """(id, type, kind, object id, created, moment) rows -> events.  Each event carries its
        object as it was when the event happened, and for some types the fields that changed
        (`previous_attributes`: the object one second earlier, diffed)."""
        objects = self.render_aligned_many([(kind, oid, at) for _, _, kind, oid, _, at in rows])
        prior = self.render_aligned_many([(kind, oid, at - timedelta(seconds=1)) if t in PREVIOUS_ATTRIBUTE_EVENTS
                                          else None for _, t, kind, oid, _, at in rows])
        out = []
        for (event_id, type_, _, _, created, _), obj, before in zip(rows, objects, prior):
            if obj is None:
                continue
            data: dict[str, Any] = {"object": obj}
            if before is not None:
                data["previous_attributes"] = {k: v for k, v in before.items() if obj.get(k) != v}
            out.append({
                "id": event_id, "object": "event", "api_version": API_VERSION, "created": created, "data": data,
                "livemode": False, "pending_webhooks": 0, "request": {"id": None, "idempotency_key": None},
                "type": type_,
            })
        return out

    def render_aligned_many(self, wanted: list[tuple[str, str, datetime] | None]) -> list[dict[str, Any] | None]:
        """Objects of mixed kinds, each as of its own moment: one entry per (kind, id, moment)."""
        out: list[dict[str, Any] | None] = [None] * len(wanted)
        by_kind: dict[str, list[int]] = {}
        for i, w in enumerate(wanted):
            if w is not None:
                by_kind.setdefault(w[0], []).append(i)
        for kind, positions in by_kind.items():
            rendered = self.render_aligned(kind, [wanted[i][1] for i in positions], [wanted[i][2] for i in positions])
            for i, obj in zip(positions, rendered):
                out[i] = obj
        return out

    def webhook_delivery(self, event: dict[str, Any], timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
        """(headers, body) of a webhook delivery of `event`, signed as Stripe signs it."""
        body = orjson.dumps(event)
        return ({"Content-Type": "application/json; charset=utf-8",
                 "Stripe-Signature": webhooks.sign(body, self.webhook_secret, timestamp)}, body)

    # -- writes --------------------------------------------------------------------------------------
    def create_refund(self, request: Request, params: dict[str, Any]) -> Response:
        """POST /v1/refunds.  With an `Idempotency-Key`, the first response is saved and replayed
        for the same parameters; other parameters under the same key are an `idempotency_error`.
        Validation failures are not saved (Stripe does not save them either)."""
        key = request.headers.get("idempotency-key")
        fingerprint = hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()
        with self._write_lock:
            if key is not None:
                saved = self._idempotency.get(key)
                if saved is not None:
                    if saved[0] != fingerprint:
                        raise StripeError(
                            400, "Keys for idempotent requests can only be used with the same parameters they "
                                 f"were first used with. Try using a key other than '{key}' if you meant to "
                                 "execute a different request.", type="idempotency_error")
                    return Response(saved[2], saved[1], media_type="application/json",
                                    headers={"Idempotent-Replayed": "true"})
            refund = self._new_refund(params, key)
            body = orjson.dumps(refund)
            if key is not None:
                self._idempotency[key] = (fingerprint, 200, body)
        return Response(body, 200, media_type="application/json")

    def _new_refund(self, params: dict[str, Any], key: str | None) -> dict[str, Any]:
        allowed = {"charge", "payment_intent", "amount", "reason", "metadata", "expand"}
        for name in params:
            if name not in allowed:
                raise StripeError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)
        clock = self.sandbox.clock
        charge_id = params.get("charge")
        if charge_id is None and params.get("payment_intent"):
            row = self.db.execute("select charge_id from stripe_charges where payment_intent = ? and created <= ?",
                                  [params["payment_intent"], clock]).fetchone()
            if row is None:
                raise missing("payment_intent", params["payment_intent"], param="payment_intent", status=400)
            charge_id = row[0]
        if charge_id is None:
            raise StripeError(400, "One of the following params should be provided for this request: "
                                   "payment_intent or charge.", code="parameter_missing", param="charge")
        charge = self.render("charge", [_str(charge_id, "charge")], clock)
        if not charge:
            raise missing("charge", charge_id, param="charge", status=400)
        charge = charge[0]
        if charge["status"] != "succeeded":
            raise StripeError(400, f"Charge {charge_id} has not succeeded and cannot be refunded.",
                              code="charge_not_refundable", param="charge")
        posted = sum(r["amount"] for r in self.posted_refunds.values() if r["charge"] == charge_id)
        remaining = charge["amount"] - charge["amount_refunded"] - posted
        if remaining <= 0:
            raise StripeError(400, f"Charge {charge_id} has already been refunded.",
                              code="charge_already_refunded", param="charge")
        amount = _int(params["amount"], "amount") if "amount" in params else remaining
        if amount <= 0:
            raise StripeError(400, "This value must be greater than or equal to 1.",
                              code="parameter_invalid_integer", param="amount")
        if amount > remaining:
            raise StripeError(400, f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                                   f"({remaining})", code="amount_too_large", param="amount")
        reason = params.get("reason")
        if reason is not None and reason not in ("duplicate", "fraudulent", "requested_by_customer"):
            raise StripeError(400, "Invalid reason: must be one of duplicate, fraudulent, or "
                                   "requested_by_customer", param="reason")
        n = len(self.posted_refunds) + 1
        refund_id = "re_" + hashlib.blake2b(f"{self.seed}:posted:{key or n}:{n}".encode(),
                                            digest_size=12).hexdigest()
        refund = {
            "id": refund_id, "object": "refund", "amount": amount, "balance_transaction": None,
            "charge": charge_id, "created": int(clock.timestamp()), "currency": charge["currency"],
            "metadata": params.get("metadata") or {}, "payment_intent": charge["payment_intent"],
            "reason": reason, "receipt_number": None, "source_transfer_reversal": None, "status": "succeeded",
            "transfer_reversal": None,
        }
        self.posted_refunds[refund_id] = refund
        return refund


def _outcome(ok: bool, failure_code: str | None) -> dict[str, Any]:
    if ok:
        return {"network_status": "approved_by_network", "reason": None, "risk_level": "normal",
                "seller_message": "Payment complete.", "type": "authorized"}
    reason = {"card_declined": "generic_decline"}.get(failure_code or "", failure_code)
    return {"network_status": "declined_by_network", "reason": reason, "risk_level": "normal",
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined"}
