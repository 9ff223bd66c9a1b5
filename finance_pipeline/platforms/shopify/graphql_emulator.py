"""Shopify GraphQL Admin API on the Shopify emulator: `POST /admin/api/{version}/graphql.json`.

Same shop, same world, same `X-Shopify-Access-Token` as the REST endpoints; orders are the REST
renderer's orders re-expressed by `graphql_render` (so both APIs always agree).  Queries are
parsed with graphql-core; the executor below walks the parsed selection sets over the rendered
objects (a full schema-driven execution costs more than the rendering itself on 250-order
pages).  What it serves:

- **Query**: `shop`, `orders(first|last, after|before, query, sortKey, reverse)` (Relay
  connection: `edges {cursor node}`, `nodes`, `pageInfo {hasNextPage hasPreviousPage startCursor
  endCursor}`), `order(id:)`, `node(id:)` (orders and bulk operations), `currentBulkOperation`.
  `query` is Shopify's search syntax; `updated_at`, `created_at` (`:>=`, `:>`, `:<=`, `:<`, `:`)
  and `status` (open/closed/cancelled/any) are understood.  Unlike REST, all statuses are listed
  by default.  Sort keys ID (default), CREATED_AT, UPDATED_AT; ties broken by id.
- **Mutation**: `bulkOperationRunQuery(query:)` → `bulkOperation {id status …} userErrors`.  The
  operation runs in a background thread (CREATED → RUNNING → COMPLETED, `objectCount` growing),
  writes a JSONL file — one line per connection node, a nested connection's nodes on their own
  lines after their parent with `__parentId`, as Shopify does — and serves it from
  `url` (a signed path on the emulator, no token needed, like Shopify's storage URL).  One bulk
  query at a time per shop.  `fail_next_bulk` (tests) makes the next one end `FAILED` with that
  `errorCode`.
- **Cost**: requested cost computed from the query (object 1, connection 2 + first × its node's
  cost, scalars 0, mutation 10), actual cost from what was returned; single-query limit 1000
  (`MAX_COST_EXCEEDED`).  Each response carries `extensions.cost {requestedQueryCost
  actualQueryCost throttleStatus {maximumAvailable currentlyAvailable restoreRate}}`.  The bucket
  restores at the plan's documented rate (Standard 100/s … Plus 1000/s), compressed by
  `time_scale` like the REST bucket; a query costing more than what is available is refused with
  `errors[0].extensions.code = THROTTLED` (HTTP 200, as Shopify answers) and costs nothing; the
  unused part of an accepted query's requested cost is refunded.
- The REST call-limit bucket does not apply to GraphQL (Shopify meters the two separately).

Not enforced: the bulk query's connection count/depth limits, and the 60-day window without
`read_all_orders`.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson
from graphql import GraphQLError, parse
from graphql.language import (DocumentNode, FieldNode, FragmentDefinitionNode, FragmentSpreadNode,
                              InlineFragmentNode, OperationDefinitionNode, SelectionSetNode)
from graphql.utilities import value_from_ast_untyped
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from finance_pipeline.platforms.shopify import graphql_render as gr
from finance_pipeline.platforms.shopify import render
from finance_pipeline.sandbox.server import PageCache, json_response
from finance_pipeline.settings import BUSINESS_TIMEZONE

UTC = timezone.utc
# restore rate (points/s) per plan, as documented; the bucket holds 20 s of restore
RESTORE_RATES = {"standard": 100.0, "advanced": 200.0, "plus": 1000.0}
BUCKET_SECONDS = 20.0
MAX_QUERY_COST = 1000
MUTATION_COST = 10
MAX_PAGE = 250
CONNECTION_WRAPPERS = ("edges", "nodes", "pageInfo")
SORT_COLUMNS = {"ID": "order_id", "CREATED_AT": "created_at", "UPDATED_AT": "updated_at_asof",
                "PROCESSED_AT": "created_at"}
SEARCH_FIELDS = {"updated_at": "updated_at_asof", "created_at": "date_trunc('second', created_at)",
                 "processed_at": "date_trunc('second', created_at)"}
SEARCH_TERM = re.compile(r"""(\w+):(>=|<=|>|<)?('[^']*'|"[^"]*"|\S+)""")
BULK_ERROR_CODES = ("ACCESS_DENIED", "INTERNAL_SERVER_ERROR", "TIMEOUT")


class QueryError(Exception):
    """A GraphQL error answered in `errors` (HTTP 200), with Shopify's extension code if any."""

    def __init__(self, message: str, code: str | None = None, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions = {"code": code, **extensions} if code else extensions


# ------------------------------------------------------------------------------ the cost bucket
class CostBucket:
    """Shopify's calculated-query-cost bucket: `currentlyAvailable` points, restored per second."""

    def __init__(self, restore_rate: float, time_scale: float) -> None:
        self.restore_rate = restore_rate  # what the API reports
        self.maximum = restore_rate * BUCKET_SECONDS
        self._restore_per_s = restore_rate * time_scale  # what happens (time-compressed)
        self._available = self.maximum
        self._t = time.monotonic()
        self._lock = threading.Lock()

    def _restore(self) -> None:
        now = time.monotonic()
        self._available = min(self.maximum, self._available + (now - self._t) * self._restore_per_s)
        self._t = now

    def take(self, cost: float) -> bool:
        with self._lock:
            self._restore()
            if cost > self._available + 1e-9:
                return False
            self._available -= cost
            return True

    def refund(self, points: float) -> None:
        with self._lock:
            self._restore()
            self._available = min(self.maximum, self._available + points)

    def status(self) -> dict:
        with self._lock:
            self._restore()
            return {"maximumAvailable": self.maximum, "currentlyAvailable": int(self._available),
                    "restoreRate": self.restore_rate}


# ------------------------------------------------------------------------------ the executor
@dataclass
class Context:
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]
    bulk: bool = False
    # bulk mode: lines of nested connections waiting to be written after their parent
    children: list[dict] = field(default_factory=list)
    # (selection set, type) -> its fields with fragments expanded: walked once per request/operation
    plans: dict = field(default_factory=dict)


def _plan(selection_set: SelectionSetNode | None, ctx: Context, typename: str | None) -> list[tuple[str, str, FieldNode]]:
    """(response key, field name, node) of a selection set's fields, cached on the context."""
    cache_key = (id(selection_set), typename)
    plan = ctx.plans.get(cache_key)
    if plan is None:
        plan = [(f.alias.value if f.alias else f.name.value, f.name.value, f)
                for f in _fields(selection_set, ctx, typename)]
        ctx.plans[cache_key] = plan
    return plan


def _args(node: FieldNode, ctx: Context) -> dict[str, Any]:
    return {a.name.value: value_from_ast_untyped(a.value, ctx.variables) for a in node.arguments}


def _fields(selection_set: SelectionSetNode | None, ctx: Context, typename: str | None) -> Iterator[FieldNode]:
    """The fields of a selection set, fragments expanded (those whose type condition matches)."""
    if selection_set is None:
        return
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            yield sel
        elif isinstance(sel, InlineFragmentNode):
            if sel.type_condition is None or typename is None or sel.type_condition.name.value == typename:
                yield from _fields(sel.selection_set, ctx, typename)
        elif isinstance(sel, FragmentSpreadNode):
            frag = ctx.fragments.get(sel.name.value)
            if frag is None:
                raise QueryError(f"Fragment {sel.name.value} was used, but not defined")
            if typename is None or frag.type_condition.name.value == typename:
                yield from _fields(frag.selection_set, ctx, typename)


def _page_size(args: dict, bulk: bool, name: str) -> int | None:
    n = args.get("first", args.get("last"))
    if n is None:
        if bulk:
            return None
        raise QueryError(f"you must provide one of first or last on the {name} connection", "BAD_REQUEST")
    if not isinstance(n, int) or n < 0 or n > MAX_PAGE:
        raise QueryError(f"The {name} connection's first/last must be between 0 and {MAX_PAGE}", "BAD_REQUEST")
    return n


def requested_cost(selection_set: SelectionSetNode | None, ctx: Context) -> int:
    """Shopify's calculated cost of a selection before running it: objects 1, connections
    2 + page size × the cost of one node, scalars 0."""
    total = 0
    for f in _fields(selection_set, ctx, None):
        if f.selection_set is None:
            continue
        args = _args(f, ctx)
        is_connection = "first" in args or "last" in args or any(
            s.name.value in CONNECTION_WRAPPERS for s in _fields(f.selection_set, ctx, None))
        if is_connection:
            n = _page_size(args, ctx.bulk, f.name.value) or 0
            per_node = 0
            for w in _fields(f.selection_set, ctx, None):
                if w.name.value == "edges":
                    per_node += sum(1 + requested_cost(nd.selection_set, ctx)
                                    for nd in _fields(w.selection_set, ctx, None) if nd.name.value == "node")
                elif w.name.value == "nodes":
                    per_node += 1 + requested_cost(w.selection_set, ctx)
            total += 2 + n * per_node
        else:
            total += 1 + requested_cost(f.selection_set, ctx)
    return total


def _cursor(index: int) -> str:
    return base64.urlsafe_b64encode(f"i:{index}".encode()).decode().rstrip("=")


def _index(cursor: Any) -> int:
    try:
        text = base64.urlsafe_b64decode(str(cursor) + "=" * (-len(str(cursor)) % 4)).decode()
        if not text.startswith("i:"):
            raise ValueError(text)
        return int(text[2:])
    except (ValueError, UnicodeDecodeError):
        raise QueryError("Invalid cursor for current pagination sort.", "BAD_REQUEST") from None


_MISSING = object()


class Cost:
    def __init__(self) -> None:
        self.points = 0


def project(obj: dict, selection_set: SelectionSetNode | None, ctx: Context, cost: Cost) -> dict:
    """The response object for `obj` under `selection_set` (aliases, fragments, connections)."""
    typename = obj.get("__typename")
    out: dict[str, Any] = {}
    for key, name, f in _plan(selection_set, ctx, typename):
        if name == "__typename":
            out[key] = typename
            continue
        value = obj.get(name, _MISSING)
        if value is _MISSING:
            raise QueryError(f"Field '{name}' doesn't exist on type '{typename}'", "undefinedField",
                             typeName=typename, fieldName=name)
        if f.selection_set is None:
            if value is None or isinstance(value, (str, bool, int, float)):  # the common case: a scalar
                out[key] = value
                continue
            if isinstance(value, dict) or (isinstance(value, list) and value and isinstance(value[0], dict)):
                raise QueryError(f"Field must have selections (field '{name}' returns "
                                 f"{value.get('__typename') if isinstance(value, dict) else 'a list of objects'} "
                                 "but has no selections.)", "selectionMismatch")
            out[key] = value
            continue
        if value is None:
            out[key] = None
        elif isinstance(value, gr.Connection):
            if ctx.bulk:
                parent = obj.get("id")
                for item in value:
                    for w in _fields(f.selection_set, ctx, None):
                        for sel in ([nd for nd in _fields(w.selection_set, ctx, None) if nd.name.value == "node"]
                                    if w.name.value == "edges" else [w] if w.name.value == "nodes" else []):
                            line = project(item, sel.selection_set, ctx, cost)
                            line["__parentId"] = parent
                            ctx.children.append(line)
                            cost.points += 1
                continue  # a nested connection is not part of its parent's line
            out[key] = connection(value, f, ctx, cost)
        elif isinstance(value, list):
            out[key] = [project(v, f.selection_set, ctx, cost) for v in value]
            cost.points += len(value)
        elif isinstance(value, dict):
            out[key] = project(value, f.selection_set, ctx, cost)
            cost.points += 1
        else:
            raise QueryError(f"Field must not have selections ('{name}' returns a scalar)", "selectionMismatch")
    return out


def connection(items: list, f: FieldNode, ctx: Context, cost: Cost, start: int = 0,
               total: int | None = None, cursor_of: Callable[[int], str] = _cursor) -> dict:
    """A Relay connection page over `items`.  With `total`, `items` is already the page that
    starts at position `start` of a longer list (the top-level `orders`)."""
    args = _args(f, ctx)
    n = _page_size(args, ctx.bulk, f.name.value)
    if total is None:
        total = len(items)
        lo = _index(args["after"]) + 1 if args.get("after") else 0
        hi = _index(args["before"]) if args.get("before") else total
        if args.get("last") is not None and args.get("first") is None:
            lo = max(lo, hi - n)
        else:
            hi = min(hi, lo + n)
        page = items[lo:hi]
        start = lo
    else:
        page = items
    cost.points += 2
    out: dict[str, Any] = {}
    for w in _fields(f.selection_set, ctx, None):
        key = w.alias.value if w.alias else w.name.value
        if w.name.value == "edges":
            edges = []
            for i, item in enumerate(page):
                edge: dict[str, Any] = {}
                for e in _fields(w.selection_set, ctx, None):
                    ekey = e.alias.value if e.alias else e.name.value
                    if e.name.value == "cursor":
                        edge[ekey] = cursor_of(start + i)
                    elif e.name.value == "node":
                        edge[ekey] = project(item, e.selection_set, ctx, cost)
                        cost.points += 1
                    elif e.name.value == "__typename":
                        edge[ekey] = "Edge"
                edges.append(edge)
            out[key] = edges
        elif w.name.value == "nodes":
            out[key] = [project(item, w.selection_set, ctx, cost) for item in page]
            cost.points += len(page)
        elif w.name.value == "pageInfo":
            info = {"__typename": "PageInfo", "hasNextPage": start + len(page) < total, "hasPreviousPage": start > 0,
                    "startCursor": cursor_of(start) if page else None,
                    "endCursor": cursor_of(start + len(page) - 1) if page else None}
            out[key] = project(info, w.selection_set, ctx, Cost())
        elif w.name.value == "__typename":
            out[key] = "Connection"
        else:
            raise QueryError(f"Field '{w.name.value}' doesn't exist on type 'Connection'", "undefinedField")
    return out


# ------------------------------------------------------------------------------ search syntax
def parse_search(text: str | None) -> dict:
    """Shopify's search syntax, the part the pipeline uses: `updated_at:>='2025-01-01T00:00:00Z'`,
    `created_at:<…`, `status:any`; terms joined by spaces (AND)."""
    out: dict[str, Any] = {"status": "any", "times": []}
    if not text:
        return out
    pos = 0
    for m in SEARCH_TERM.finditer(text):
        if text[pos:m.start()].strip() not in ("", "AND"):
            raise QueryError(f"Unsupported search syntax near {text[pos:m.start()].strip()!r}", "BAD_REQUEST")
        pos = m.end()
        name, op, value = m.group(1), m.group(2) or "=", m.group(3).strip("'\"")
        if name == "status":
            if value not in ("open", "closed", "cancelled", "any"):
                raise QueryError(f"Invalid status {value!r}", "BAD_REQUEST")
            out["status"] = value
        elif name in SEARCH_FIELDS:
            try:
                at = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise QueryError(f"Invalid date {value!r} for {name}", "BAD_REQUEST") from None
            if at.tzinfo is None:
                at = at.replace(tzinfo=render.SHOP_TZ)
            out["times"].append([name, op, at.astimezone(UTC).isoformat()])
        else:
            raise QueryError(f"Unsupported search field {name!r}", "BAD_REQUEST")
    if text[pos:].strip():
        raise QueryError(f"Unsupported search syntax near {text[pos:].strip()!r}", "BAD_REQUEST")
    return out


# ------------------------------------------------------------------------------ bulk operations
@dataclass
class BulkOperation:
    id: str
    query: str
    created_at: str
    status: str = "CREATED"
    error_code: str | None = None
    completed_at: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int | None = None
    path: Path | None = None
    seconds: float | None = None  # how long it ran (the bench reports it apart: on Shopify it is the shop's work)

    def node(self, url: str | None) -> dict:
        return {"__typename": "BulkOperation", "id": self.id, "status": self.status, "errorCode": self.error_code,
                "createdAt": self.created_at, "completedAt": self.completed_at, "type": "QUERY",
                "objectCount": str(self.object_count), "rootObjectCount": str(self.root_object_count),
                "fileSize": None if self.file_size is None else str(self.file_size), "url": url,
                "partialDataUrl": None, "query": self.query}


class GraphQLAdmin:
    """The GraphQL Admin API of one `ShopifyEmulator` (routes, cost bucket, bulk operations)."""

    CHUNK = 250  # orders rendered per step of a bulk operation

    def __init__(self, emulator: Any) -> None:
        self.em = emulator
        self.bucket = CostBucket(RESTORE_RATES[emulator.plan], emulator.config.time_scale)
        self.bulk_ops: dict[str, BulkOperation] = {}
        self.current_bulk: BulkOperation | None = None
        self.fail_next_bulk: str | None = None  # tests: the next bulk operation fails with this errorCode
        self.bulk_step_delay_s = 0.0  # tests: slow a bulk operation down to see it RUNNING
        self._dir: Path | None = None
        self._kept: list[BulkOperation] = []
        self._bulk_lock = threading.Lock()
        self._bulk_seq = 0
        self._documents: dict[str, DocumentNode] = {}
        self._signing_key = hashlib.blake2b(f"bulk:{emulator.access_token}".encode(), digest_size=16).digest()

    @property
    def _bulk_dir(self) -> Path:
        """Where result files live: made on first use, removed with this object (or at exit)."""
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="shopify-bulk-"))
            weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        return self._dir

    def routes(self) -> list[Route]:
        return [
            Route("/admin/api/{version}/graphql.json", self.endpoint, methods=["POST"]),
            Route("/__bulk/{name}.jsonl", self.download, methods=["GET"]),
        ]

    # ---------------------------------------------------------------- HTTP
    async def endpoint(self, request: Request) -> Response:
        raw = await request.body()
        return await run_in_threadpool(self.handle, request, raw)  # DuckDB work off the event loop

    def handle(self, request: Request, raw: bytes) -> Response:
        from finance_pipeline.platforms.shopify.emulator import AUTH_ERROR, NOT_FOUND, VERSION_RE

        if not VERSION_RE.match(request.path_params.get("version", "")):
            return json_response(NOT_FOUND, 404)
        token = request.headers.get("x-shopify-access-token", "")
        if not hmac.compare_digest(token.encode(), self.em.access_token.encode()):
            return json_response(AUTH_ERROR, 401)
        try:
            body = orjson.loads(raw)
            text = body["query"]
            variables = body.get("variables") or {}
            if not isinstance(text, str) or not isinstance(variables, dict):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            return json_response({"errors": {"query": "Required parameter missing or invalid"}}, 400)
        try:
            document = self._parse(text)
        except GraphQLError as exc:
            return json_response({"errors": [{"message": exc.message, "locations": [
                {"line": loc.line, "column": loc.column} for loc in exc.locations or ()]}]})
        try:
            return self.execute(document, variables, body.get("operationName"), request)
        except QueryError as exc:
            return json_response({"errors": [{"message": exc.message, "extensions": exc.extensions}]})

    def _parse(self, text: str) -> DocumentNode:
        """Parsed documents are kept (a client sends the same query for every page)."""
        document = self._documents.get(text)
        if document is None:
            document = parse(text)
            if len(self._documents) >= 64:
                self._documents.pop(next(iter(self._documents)))
            self._documents[text] = document
        return document

    def download(self, request: Request) -> Response:
        name = request.path_params["name"]
        expected = hmac.new(self._signing_key, name.encode(), "sha256").hexdigest()
        if not hmac.compare_digest(request.query_params.get("sig", ""), expected):
            return Response("<Error><Code>AccessDenied</Code></Error>", 403, media_type="application/xml")
        path = self._bulk_dir / f"{name}.jsonl"
        if not path.exists():
            return Response("<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml")
        return FileResponse(path, media_type="application/jsonl")

    def _url(self, op: BulkOperation, request: Request | None) -> str | None:
        if op.path is None or op.status != "COMPLETED":
            return None
        name = op.path.stem
        sig = hmac.new(self._signing_key, name.encode(), "sha256").hexdigest()
        base = f"{request.url.scheme}://{request.url.netloc}" if request is not None else self.em.base_url
        return f"{base}/__bulk/{name}.jsonl?sig={sig}"

    # ---------------------------------------------------------------- execution
    def execute(self, document: DocumentNode, variables: dict, operation_name: str | None, request: Request) -> Response:
        ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if operation_name:
            ops = [o for o in ops if o.name and o.name.value == operation_name]
        if len(ops) != 1:
            raise QueryError("An operation name is required" if ops else "No operations in query document")
        op = ops[0]
        values = dict(variables)
        for vd in op.variable_definitions:
            name = vd.variable.name.value
            if name not in values and vd.default_value is not None:
                values[name] = value_from_ast_untyped(vd.default_value, {})
        ctx = Context({d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}, values)
        kind = op.operation.value
        requested = MUTATION_COST if kind == "mutation" else requested_cost(op.selection_set, ctx)
        if requested > MAX_QUERY_COST:
            raise QueryError(f"Query cost is {requested}, which exceeds the single query max cost limit "
                             f"({MAX_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits "
                             "for more information on how the cost of a query is calculated.\n\nTo query larger "
                             "amounts of data with fewer limits, bulk operations should be used instead.\nSee "
                             "https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n",
                             "MAX_COST_EXCEEDED", cost=requested, maxCost=MAX_QUERY_COST)
        if self.em.config.enforce_rate_limits and not self.bucket.take(requested):
            self.em.counters["graphql_throttled"] += 1
            return self.em.refuse(json_response({
                "errors": [{"message": "Throttled", "extensions": {
                    "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": None,
                                        "throttleStatus": self.bucket.status()}}}))
        cost = Cost()
        data: dict[str, Any] = {}
        try:
            for f in _fields(op.selection_set, ctx, None):
                key = f.alias.value if f.alias else f.name.value
                if kind == "mutation":
                    data[key] = self.mutation(f, ctx, request)
                else:
                    data[key] = self.query_field(f, ctx, cost, request)
        except QueryError:
            if self.em.config.enforce_rate_limits:
                self.bucket.refund(requested)
            raise
        actual = MUTATION_COST if kind == "mutation" else min(cost.points, requested)
        if self.em.config.enforce_rate_limits:
            self.bucket.refund(requested - actual)
        return json_response({"data": data, "extensions": {"cost": {
            "requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": self.bucket.status()}}})

    def query_field(self, f: FieldNode, ctx: Context, cost: Cost, request: Request) -> Any:
        name = f.name.value
        args = _args(f, ctx)
        if name == "__typename":
            return "QueryRoot"
        if name == "shop":
            cost.points += 1
            plan = "Shopify Plus" if self.em.plan == "plus" else self.em.plan.title()
            from finance_pipeline.platforms.shopify.emulator import SHOP_DOMAIN

            return project(gr.shop_node("Curtains Sandbox", SHOP_DOMAIN, render.SHOP_CURRENCY, BUSINESS_TIMEZONE, plan),
                           f.selection_set, ctx, cost)
        if name == "orders":
            return self.orders(f, args, ctx, cost)
        if name in ("order", "node"):
            found = self.lookup(args.get("id"))
            if found is None:
                return None
            cost.points += 1
            return project(found, f.selection_set, ctx, cost)
        if name == "currentBulkOperation":
            op = self.current_bulk
            cost.points += 1
            return None if op is None else project(op.node(self._url(op, request)), f.selection_set, ctx, cost)
        raise QueryError(f"Field '{name}' doesn't exist on type 'QueryRoot'", "undefinedField",
                         typeName="QueryRoot", fieldName=name)

    def lookup(self, ident: Any) -> dict | None:
        m = re.fullmatch(r"gid://shopify/(\w+)/(\d+)", str(ident or ""))
        if m is None:
            raise QueryError(f"Invalid global id '{ident}'", "argumentLiteralsIncompatible")
        kind, legacy = m.group(1), int(m.group(2))
        if kind == "Order":
            nodes = self.render_nodes([legacy], self.em.sandbox.clock)
            return nodes[0] if nodes else None
        if kind == "Refund":
            row = self.em.db.execute("SELECT order_id FROM shopify_refunds WHERE refund_id = ? AND created_at <= ?",
                                     [legacy, self.em.sandbox.clock]).fetchone()
            nodes = self.render_nodes([row[0]], self.em.sandbox.clock) if row else []
            return next((r for r in (nodes[0]["refunds"] if nodes else ()) if r["id"] == ident), None)
        if kind == "BulkOperation":
            op = self.bulk_ops.get(str(ident))
            return None if op is None else op.node(self._url(op, None))
        return None

    # ---------------------------------------------------------------- orders
    def render_nodes(self, ids: list[int], clock: datetime) -> list[dict]:
        """GraphQL orders from the REST renderer's objects (through the emulator's hook, so a test
        that corrupts REST orders corrupts these too)."""
        rest = self.em.render_orders(ids, clock)
        if not rest:
            return []
        fx = dict(self.em.db.execute("SELECT order_id, fx_rate FROM shopify_orders WHERE order_id IN "
                                     "(SELECT unnest(?::BIGINT[]))", [[o["id"] for o in rest if isinstance(o, dict)
                                                                      and isinstance(o.get("id"), int)]]).fetchall())
        txns = render.transactions_by_order(self.em.db, [o["id"] for o in rest if isinstance(o, dict)
                                                         and isinstance(o.get("id"), int)], clock)
        return [gr.order_node(o, fx.get(o["id"], Decimal(1)), txns.get(o["id"], [])) for o in rest]

    def order_ids(self, search: dict, sort_key: str, reverse: bool, clock: datetime) -> list[int]:
        where, params = ["TRUE"], {"clock": clock}
        for i, (name, op, value) in enumerate(search["times"]):
            where.append(f"{SEARCH_FIELDS[name]} {'=' if op == '=' else op} $t{i}")
            params[f"t{i}"] = datetime.fromisoformat(value)
        status = search["status"]
        if status == "open":
            where.append("closed_at_asof IS NULL")
        elif status == "closed":
            where.append("closed_at_asof IS NOT NULL")
        elif status == "cancelled":
            where.append("cancelled_asof")
        direction = "DESC" if reverse else "ASC"
        column = SORT_COLUMNS[sort_key]
        order = f"{column} {direction}, order_id {direction}" if column != "order_id" else f"order_id {direction}"
        sql = (f"SELECT order_id FROM ({render.order_state_sql('TRUE')}) s WHERE {' AND '.join(where)} "
               f"ORDER BY {order}")
        return [r[0] for r in self.em.db.execute(sql, params).fetchall()]

    def orders(self, f: FieldNode, args: dict, ctx: Context, cost: Cost) -> dict:
        sort_key = str(args.get("sortKey") or "ID")
        if sort_key not in SORT_COLUMNS:
            raise QueryError(f"Argument 'sortKey' on Field 'orders' has an invalid value ({sort_key}).",
                             "argumentLiteralsIncompatible")
        reverse = bool(args.get("reverse"))
        search = parse_search(args.get("query"))
        n = _page_size(args, False, "orders")
        after = args.get("after")
        if after:
            try:
                token = PageCache.parse_token(str(after))
                key, offset, filters, clock_s = token["k"], int(token["o"]), token["f"], token["c"]
            except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
                raise QueryError("Invalid cursor for current pagination sort.", "BAD_REQUEST") from None
            if filters != {"s": search, "k": sort_key, "r": reverse}:
                raise QueryError("Invalid cursor for current pagination sort.", "BAD_REQUEST")
            start = offset + 1
        else:
            filters = {"s": search, "k": sort_key, "r": reverse}
            clock_s, key, start = self.em.sandbox.clock.isoformat(), None, 0
        clock = datetime.fromisoformat(clock_s)
        ids = self.em.pages.lookup(key) if key else None
        if ids is None:
            key, ids = self.em.pages.get(("gql-orders", orjson.dumps(filters, option=orjson.OPT_SORT_KEYS), clock_s),
                                         lambda: self.order_ids(search, sort_key, reverse, clock))
        page_ids = list(ids[start:start + n])
        nodes = self.render_nodes(page_ids, clock) if page_ids else []

        def cursor_of(i: int) -> str:
            return PageCache.token(key, i, {"f": filters, "c": clock_s})

        return connection(nodes, f, ctx, cost, start=start, total=len(ids), cursor_of=cursor_of)

    # ---------------------------------------------------------------- bulk operations
    def mutation(self, f: FieldNode, ctx: Context, request: Request) -> Any:
        name = f.name.value
        args = _args(f, ctx)
        if name == "bulkOperationRunQuery":
            op, errors = self.start_bulk(args.get("query"))
            return project({"__typename": "BulkOperationRunQueryPayload",
                            "bulkOperation": None if op is None else op.node(None),
                            "userErrors": errors}, f.selection_set, ctx, Cost())
        raise QueryError(f"Field '{name}' doesn't exist on type 'Mutation'", "undefinedField",
                         typeName="Mutation", fieldName=name)

    def start_bulk(self, text: Any) -> tuple[BulkOperation | None, list[dict]]:
        def user_error(message: str, code: str | None = None) -> tuple[None, list[dict]]:
            return None, [{"__typename": "BulkOperationUserError", "field": ["query"], "message": message, "code": code}]

        if not isinstance(text, str) or not text.strip():
            return user_error("Invalid bulk query: query is required", "INVALID")
        try:
            document = parse(text)
        except GraphQLError as exc:
            return user_error(f"Invalid bulk query: {exc.message}", "INVALID")
        ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(ops) != 1 or ops[0].operation.value != "query":
            return user_error("Invalid bulk query: a bulk operation needs exactly one query operation", "INVALID")
        ctx = Context({d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)},
                      {}, bulk=True)
        roots = list(_fields(ops[0].selection_set, ctx, None))
        if len(roots) != 1 or roots[0].name.value != "orders":
            return user_error("Invalid bulk query: the emulator's bulk operations serve one top-level `orders` "
                              "connection", "INVALID")
        with self._bulk_lock:
            if self.current_bulk is not None and self.current_bulk.status in ("CREATED", "RUNNING"):
                return user_error(f"A bulk query operation for this app and shop is already in progress: "
                                  f"{self.current_bulk.id}.", "OPERATION_IN_PROGRESS")
            self._bulk_seq += 1
            legacy = 720_000_000 + self._bulk_seq
            op = BulkOperation(gr.gid("BulkOperation", legacy), text, gr.now_utc())
            self.bulk_ops[op.id] = op
            self.current_bulk = op
            fail, self.fail_next_bulk = self.fail_next_bulk, None
        clock = self.em.sandbox.clock
        threading.Thread(target=self._run_bulk, args=(op, roots[0], ctx, clock, fail), daemon=True,
                         name=f"bulk-{legacy}").start()
        return op, []

    def _run_bulk(self, op: BulkOperation, root: FieldNode, ctx: Context, clock: datetime, fail: str | None) -> None:
        path: Path | None = None
        started = time.perf_counter()
        try:
            op.status = "RUNNING"
            args = _args(root, ctx)
            search = parse_search(args.get("query"))
            sort_key = str(args.get("sortKey") or "ID")
            if sort_key not in SORT_COLUMNS:
                raise QueryError(f"invalid sortKey {sort_key}")
            ids = self.order_ids(search, sort_key, bool(args.get("reverse")), clock)
            node_selections = [sel for w in _fields(root.selection_set, ctx, None)
                               for sel in ([nd for nd in _fields(w.selection_set, ctx, None) if nd.name.value == "node"]
                                           if w.name.value == "edges" else [w] if w.name.value == "nodes" else [])]
            path = self._bulk_dir / f"bulk-{op.id.rsplit('/', 1)[1]}-{int(time.time() * 1000)}.jsonl"
            with open(path, "wb") as out:
                for lo in range(0, len(ids), self.CHUNK):
                    if fail is not None and lo >= len(ids) // 2:
                        raise RuntimeError(fail)
                    chunk = bytearray()
                    for node in self.render_nodes(ids[lo:lo + self.CHUNK], clock):
                        for sel in node_selections:
                            ctx.children = []
                            line = project(node, sel.selection_set, ctx, Cost())
                            chunk += orjson.dumps(line, default=_json_default) + b"\n"
                            for child in ctx.children:
                                chunk += orjson.dumps(child, default=_json_default) + b"\n"
                            op.object_count += 1 + len(ctx.children)
                            op.root_object_count += 1
                    out.write(chunk)
                    if self.bulk_step_delay_s:
                        time.sleep(self.bulk_step_delay_s)
                if fail is not None:
                    raise RuntimeError(fail)
            op.path = path
            op.file_size = path.stat().st_size
            op.status = "COMPLETED"
            with self._bulk_lock:  # keep the last two results on disk (Shopify keeps a week's)
                self._kept.append(op)
                while len(self._kept) > 2:
                    older = self._kept.pop(0)
                    if older.path is not None:
                        older.path.unlink(missing_ok=True)
                        older.path = None
        except Exception as exc:  # noqa: BLE001 - the operation fails, the server goes on
            if path is not None:
                path.unlink(missing_ok=True)
            op.status = "FAILED"
            op.error_code = str(exc) if str(exc) in BULK_ERROR_CODES else "INTERNAL_SERVER_ERROR"
        finally:
            op.seconds = round(time.perf_counter() - started, 3)
            op.completed_at = gr.now_utc()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return orjson.Fragment(format(obj, "f").encode())
    raise TypeError(type(obj).__name__)
