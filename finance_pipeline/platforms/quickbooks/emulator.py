"""QuickBooks Online emulator: Intuit's token endpoint and the Accounting API v3 on one loopback port.

Paths are Intuit's own (`POST /oauth2/v1/tokens/bearer`, `/v3/company/{realmId}/invoice`,
`/query`, `/cdc` …), so a client only swaps the host.  State lives in `<sandbox root>/quickbooks.sqlite`
(`store.py`), shared by every instance in any process.

What a client meets here, as on the real API:
- OAuth2 refresh-token grant (HTTP Basic client credentials) with a rotating refresh token;
  `Authorization: Bearer` checked on every call (401 AuthenticationFault 3200), the realm in the
  path checked (403 AuthorizationFault 3100);
- `minorversion`: absent or below 75 is served as 75 (Intuit retired 1-74 in Aug 2025); above the
  newest known version is a 400;
- 500 requests per minute and 10 per second per realm, compressed by `config.time_scale`; a refused
  call gets 429 with a `ThrottleExceeded` fault (code 003001) and, as Intuit documents, no
  Retry-After header;
- `requestid` on writes: a repeated id replays the first answer instead of writing again;
- validation faults in QBO's envelope (`{"Fault": {"Error": [...], "type": "ValidationFault"}}`)
  with Intuit's codes: 2020, 2500, 2050, 5010, 6000, 6070, 6140, 6240, 610;
- `GET|POST /query` (STARTPOSITION / MAXRESULTS paging, `{"QueryResponse": {}}` when empty) and
  `GET /cdc?entities=…&changedSince=…` (deleted entities as `{"Id", "status": "Deleted"}`, ≤1000 objects;
  a changedSince more than 30 days back is a 400: "Operation cdc with changedSince date … which is
  older than fixed days is not supported."); a query's field list (`SELECT Id FROM Invoice`) answers
  sparse objects with those fields only;
- `POST /batch` (≤ 30 `BatchItemRequest`s, each answered by its `bId`: the entity or its own Fault);
- with a sandbox world, the UK trade counter's own customers, invoices, sales receipts and payments
  (`world.py`, rendered as of the clock by `world_docs.py`) are in the company too, written into the
  store before a request is served (`sync_world`); `docs()` lists only what clients wrote.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.quickbooks import reference as ref
from finance_pipeline.platforms.quickbooks import world_docs
from finance_pipeline.platforms.quickbooks.query import QueryError, parse, to_epoch_ms
from finance_pipeline.platforms.quickbooks.store import ENTITIES, Invalid, QboStore, render
from finance_pipeline.platforms.quickbooks.wire import dumps, error, fault, loads, qbo_time
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.sandbox.world import INITIAL_CLOCK

NEWEST_MINOR_VERSION = 75
CDC_LIMIT = 1000
CDC_DAYS = 30  # how far back CDC answers; an older changedSince is refused
BATCH_LIMIT = 30  # items per /batch request
# lower-case resource path -> entity name
RESOURCES = {"customer": "Customer", "invoice": "Invoice", "salesreceipt": "SalesReceipt", "payment": "Payment"}
REFERENCE = {"TaxCode": lambda: [t.wire() for t in ref.TAX_CODES.values()],
             "Item": lambda: [i.wire() for i in ref.ITEMS.values()],
             "Account": lambda: [a.wire() for a in ref.ACCOUNTS.values()]}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, headers=headers, media_type="application/json")


class QuickBooksEmulator(Emulator):
    """`credentials()` gives what a client needs; `docs(entity)` reads back what was written."""

    name = "quickbooks"
    MINUTE_LIMIT = 500
    SECOND_LIMIT = 10

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.store = QboStore(sandbox.root / "quickbooks.sqlite", self.clock)
        self.write_delay_s = 0.0  # tests: hold each write's answer this long after it committed
        self._world_key: str | None = None
        self._world_lock = threading.Lock()
        scale = self.config.time_scale
        self._minute = SlidingWindow(self.MINUTE_LIMIT, 60, scale)
        self._second = SlidingWindow(self.SECOND_LIMIT, 1, scale)

    # -- what clients and tests use ------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        s = self.store
        return {"client_id": s.client_id, "client_secret": s.client_secret, "refresh_token": s.initial_refresh_token,
                "realm_id": s.realm_id, "token_url": f"{self.base_url}/oauth2/v1/tokens/bearer",
                "api_url": f"{self.base_url}/v3/company/{s.realm_id}", "verifier_token": s.verifier_token}

    def docs(self, entity: str, *, include_deleted: bool = False, include_world: bool = False) -> list[dict]:
        """What clients wrote; the trade counter's own documents too with `include_world`."""
        return self.store.docs(entity, include_deleted=include_deleted, include_world=include_world)

    def sync_world(self) -> None:
        """The trade counter's own documents (world tables `quickbooks_*`) as of the sandbox clock,
        brought into the company before a request is served (`world_docs.py`); nothing without a
        sandbox world (a bare emulator holds only what clients write)."""
        if not self.sandbox.exists():
            return
        key = f"{self.sandbox.world_path().name}|{self.sandbox.clock.isoformat()}"
        if key == self._world_key:
            return
        with self._world_lock:
            if key != self._world_key and self.store.world_key() != key:
                self.store.sync_world(key, world_docs.render(self.db, self.sandbox.clock))
            self._world_key = key

    def clock(self) -> datetime:
        """The company's clock: the sandbox clock; without a sandbox world (a bare emulator) the
        sandbox's initial clock, fixed, so what a client writes is stamped the same run after run."""
        return self.sandbox.clock if self.sandbox.exists() else INITIAL_CLOCK

    def advance_clock(self, seconds: float) -> None:
        """Move this company's clock: token expiry and the requestid window, and every stamp."""
        self.store.advance_clock(seconds)

    def sign_webhook(self, body: bytes) -> str:
        """`intuit-signature`: Base64(HMAC-SHA256(verifier token, raw body))."""
        return base64.b64encode(hmac.new(self.store.verifier_token.encode(), body, hashlib.sha256).digest()).decode()

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(self.store.counters())
        for entity in ENTITIES:
            out[entity.lower() + "s"] = len(self.store.docs(entity))
        return out

    # -- routing ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        base = "/v3/company/{realm}"
        return [
            Route("/oauth2/v1/tokens/bearer", self._token, methods=["POST"]),
            Route(f"{base}/query", self._query, methods=["GET", "POST"]),
            Route(f"{base}/cdc", self._cdc, methods=["GET"]),
            Route(f"{base}/companyinfo/{{cid}}", self._companyinfo, methods=["GET"]),
            Route(f"{base}/preferences", self._preferences, methods=["GET"]),
            Route(f"{base}/batch", self._batch, methods=["POST"]),
            Route(f"{base}/{{resource}}", self._write, methods=["POST"]),
            Route(f"{base}/{{resource}}/{{entity_id}}", self._read, methods=["GET"]),
        ]

    def faults_apply(self, method: str, path: str) -> bool:
        return path.startswith("/v3/")

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return _json(self._throttle_body(), 429)
        return _json(self._fault([error(str(status), "An application error has occurred while processing your request",
                                       "System Failure Error: injected fault (sandbox)")], "SystemFault"), status)

    def _fault(self, errors: list[dict], kind: str = "ValidationFault") -> dict:
        return fault(errors, kind, self.store.clock_ms())

    def _throttle_body(self) -> dict:
        return self._fault([error("003001", "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                                 "The request limit was reached.")], "SERVICE")

    # -- gatekeeping -----------------------------------------------------------------------------
    def rate_limit(self, request: Request) -> Response | None:
        if not self.config.enforce_rate_limits:
            return None
        for window in (self._minute, self._second):
            if window.try_acquire() > 0:
                return self.refuse(_json(self._throttle_body(), 429))
        return None

    def _gate(self, request: Request) -> Response | None:
        refused = self.rate_limit(request)
        if refused is not None:
            return refused
        self.sync_world()
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token or not self.store.access_token_valid(token.strip()):
            return _json(self._fault([error("3200", "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                                           "Token expired or invalid")], "AuthenticationFault"), 401,
                         {"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'})
        if request.path_params.get("realm") != self.store.realm_id:
            return _json(self._fault([error("3100", "message=ApplicationAuthorizationFailed; errorCode=003100; "
                                           "statusCode=403", "The app is not authorised for this company")],
                                    "AuthorizationFault"), 403)
        minor = request.query_params.get("minorversion")
        if minor is not None and (not minor.isdigit() or int(minor) > NEWEST_MINOR_VERSION):
            return _json(self._fault([error("2010", "Request has invalid or unsupported property",
                                           f"Invalid minorversion {minor!r}; the newest is {NEWEST_MINOR_VERSION}",
                                           "minorversion")]), 400)
        return None

    # -- OAuth -----------------------------------------------------------------------------------
    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        client_id = client_secret = None
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return _json({"error": "invalid_client"}, 401)
        if form.get("grant_type") != "refresh_token":
            return _json({"error": "unsupported_grant_type"}, 400)
        status, body = await run_in_threadpool(self.store.refresh, client_id, client_secret, form.get("refresh_token"))
        return _json(body, status, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    # -- reads -----------------------------------------------------------------------------------
    async def _query(self, request: Request) -> Response:
        if (denied := self._gate(request)) is not None:
            return denied
        text = request.query_params.get("query")
        if request.method == "POST":
            text = (await request.body()).decode("utf-8", "replace")
        return await run_in_threadpool(self._run_query, text or "")

    def _run_query(self, text: str) -> Response:
        try:
            q = parse(text)
            if q.entity in REFERENCE:
                rows = REFERENCE[q.entity]()
                for name, op, value in q.where:
                    key = "Name" if name.lower() == "name" else name
                    if op == "=":
                        rows = [r for r in rows if str(r.get(key)) == str(value)]
                    elif op == "IN":
                        rows = [r for r in rows if str(r.get(key)) in {str(v) for v in value}]
                total = len(rows)
                rows = rows[q.start - 1:q.start - 1 + q.max_results]
            else:
                rows, total = self.store.query(q)
        except QueryError as exc:
            return _json(self._fault([error("4000", "Error parsing query", f"QueryParserError: {exc}")]), 400)
        if q.fields:
            self.counters["projections"] += 1
        if q.count:
            return _json({"QueryResponse": {"totalCount": total}, "time": _now(self)})
        if not rows:
            return _json({"QueryResponse": {}, "time": _now(self)})
        docs = [project(render(r), q.fields) if q.fields else render(r) for r in rows]
        return _json({"QueryResponse": {q.entity: docs, "startPosition": q.start, "maxResults": len(rows)},
                      "time": _now(self)})

    async def _cdc(self, request: Request) -> Response:
        if (denied := self._gate(request)) is not None:
            return denied
        names = [n.strip() for n in (request.query_params.get("entities") or "").split(",") if n.strip()]
        since = request.query_params.get("changedSince")
        problems = []
        if not names:
            problems.append(error("2020", "Required param missing, need to supply the required value for the API",
                                  "Required parameter entities is missing in the request", "entities"))
        if not since:
            problems.append(error("2020", "Required param missing, need to supply the required value for the API",
                                  "Required parameter changedSince is missing in the request", "changedSince"))
        unknown = [n for n in names if n not in ENTITIES]
        if unknown:
            problems.append(error("2010", "Request has invalid or unsupported property",
                                  f"CDC does not support {', '.join(unknown)}", "entities"))
        since_ms = 0
        if since:
            try:
                since_ms = to_epoch_ms(since)
            except QueryError as exc:
                problems.append(error("2040", "Invalid Date", str(exc), "changedSince"))
            if since_ms < self.store.clock_ms() - CDC_DAYS * 86400 * 1000:
                problems.append(error("2010", "Request has invalid or unsupported property",
                                      f"Operation cdc with changedSince date {since} which is older than fixed "
                                      f"days is not supported.", "changedSince"))
        if problems:
            return _json(self._fault(problems), 400)
        self.counters["cdc"] += 1

        def collect() -> list[dict]:
            budget, parts = CDC_LIMIT, []
            for name in names:
                rows = self.store.changed_since(name, since_ms, budget)
                budget -= len(rows)
                part: dict[str, Any] = {"startPosition": 1, "maxResults": len(rows)}
                if rows:
                    part[name] = [render(r) for r in rows]
                parts.append(part)
            return parts
        parts = await run_in_threadpool(collect)
        return _json({"CDCResponse": [{"QueryResponse": parts}], "time": _now(self)})

    async def _read(self, request: Request) -> Response:
        if (denied := self._gate(request)) is not None:
            return denied
        entity = RESOURCES.get(request.path_params["resource"].lower())
        if entity is None:
            return _json(self._fault([error("610", "Object Not Found", "Unsupported resource")]), 400)
        doc = await run_in_threadpool(self.store.get, None, entity, request.path_params["entity_id"])
        if doc is None or doc.get("_status") == "Deleted":
            return _json(self._fault([error("610", "Object Not Found",
                                           f"Object Not Found : Something you're trying to use has been made "
                                           f"inactive or deleted. {entity} Id={request.path_params['entity_id']}")]),
                         400)
        return _json({entity: render(doc), "time": _now(self)})

    async def _companyinfo(self, request: Request) -> Response:
        if (denied := self._gate(request)) is not None:
            return denied
        return _json({"CompanyInfo": ref.company_info(self.store.realm_id), "time": _now(self)})

    async def _preferences(self, request: Request) -> Response:
        if (denied := self._gate(request)) is not None:
            return denied
        return _json({"Preferences": ref.preferences(), "time": _now(self)})

    # -- writes ----------------------------------------------------------------------------------
    async def _write(self, request: Request) -> Response:
        if (denied := self._gate(request)) is not None:
            return denied
        entity = RESOURCES.get(request.path_params["resource"].lower())
        if entity is None:
            return _json(self._fault([error("2010", "Request has invalid or unsupported property",
                                           f"Unsupported entity {request.path_params['resource']}")]), 400)
        body = await request.body()
        operation = request.query_params.get("operation")
        requestid = request.query_params.get("requestid")
        if requestid is not None and not 0 < len(requestid) <= 50:
            return _json(self._fault([error("2050", "String length is either shorter or longer than supported by "
                                           "specification", "requestid: Min:1 Max:50", "requestid")]), 400)
        if operation not in (None, "void", "delete", "update"):
            return _json(self._fault([error("2010", "Request has invalid or unsupported property",
                                           f"Unsupported operation {operation}")]), 400)

        def apply(con) -> tuple[int, bytes]:  # noqa: ANN001 - sqlite3 connection
            try:
                payload = loads(body) if body.strip() else None
            except ValueError:
                return 400, dumps(self._fault([error("2010", "Request has invalid or unsupported property",
                                                    "The request body is not valid JSON")]))
            try:
                doc = self.store.save(con, entity, payload, None if operation == "update" else operation)
            except Invalid as exc:
                return exc.status, dumps(self._fault(exc.errors, exc.kind))
            return 200, dumps({entity: render(doc), "time": _now(self)})

        status, answer, _ = await run_in_threadpool(self.store.once, requestid, apply)
        if self.write_delay_s:
            import asyncio

            await asyncio.sleep(self.write_delay_s)
        return Response(answer, status_code=status, media_type="application/json")

    async def _batch(self, request: Request) -> Response:
        """`POST /batch`: up to 30 `BatchItemRequest`s (`bId`, `operation` create | update | delete |
        void, one entity object), each answered on its own in `BatchItemResponse` — the entity as
        saved or its own `Fault` — so one bad record does not sink the rest.  The whole batch is one
        `requestid`: a replay gets the first answer.  Items are applied in order, each in its own
        savepoint (a refused item leaves nothing behind)."""
        if (denied := self._gate(request)) is not None:
            return denied
        body = await request.body()
        requestid = request.query_params.get("requestid")
        if requestid is not None and not 0 < len(requestid) <= 50:
            return _json(self._fault([error("2050", "String length is either shorter or longer than supported by "
                                           "specification", "requestid: Min:1 Max:50", "requestid")]), 400)

        def apply(con) -> tuple[int, bytes]:  # noqa: ANN001 - sqlite3 connection
            try:
                items = (loads(body) or {}).get("BatchItemRequest")
            except (ValueError, AttributeError):
                items = None
            if not isinstance(items, list) or not items:
                return 400, dumps(self._fault([error("2020", "Required param missing, need to supply the required "
                                                    "value for the API", "BatchItemRequest is missing",
                                                    "BatchItemRequest")]))
            if len(items) > BATCH_LIMIT:
                return 400, dumps(self._fault([error("2010", "Request has invalid or unsupported property",
                                                    f"A batch holds at most {BATCH_LIMIT} items; got {len(items)}",
                                                    "BatchItemRequest")]))
            answers = []
            for n, item in enumerate(items):
                bid = str(item.get("bId")) if isinstance(item, dict) and item.get("bId") is not None else None
                answers.append(self._batch_item(con, item, bid or str(n)))
            return 200, dumps({"BatchItemResponse": answers, "time": _now(self)})

        status, answer, _ = await run_in_threadpool(self.store.once, requestid, apply)
        if self.write_delay_s:  # tests: as long as the batch's writes one by one would have held it
            import asyncio

            try:
                items = len((loads(body) or {}).get("BatchItemRequest") or [])
            except (ValueError, AttributeError, TypeError):
                items = 1
            await asyncio.sleep(self.write_delay_s * max(1, min(items, BATCH_LIMIT)))
        return Response(answer, status_code=status, media_type="application/json")

    def _batch_item(self, con, item: Any, bid: str) -> dict:  # noqa: ANN001
        if not isinstance(item, dict):
            return {"bId": bid, "Fault": self._fault([error("2010", "Request has invalid or unsupported property",
                                                           "A batch item must be an object")])["Fault"]}
        operation = item.get("operation") or "create"
        names = [k for k in item if k in RESOURCES.values()]
        if operation not in ("create", "update", "delete", "void") or len(names) != 1:
            return {"bId": bid, "Fault": self._fault([error("2010", "Request has invalid or unsupported property",
                                                           f"Unsupported batch item (operation {operation!r}, "
                                                           f"entities {names})")])["Fault"]}
        entity = names[0]
        con.execute("SAVEPOINT batch_item")
        try:
            doc = self.store.save(con, entity, item[entity], None if operation in ("create", "update") else operation)
        except Invalid as exc:
            con.execute("ROLLBACK TO batch_item")
            con.execute("RELEASE batch_item")
            return {"bId": bid, "Fault": fault(exc.errors, exc.kind)["Fault"]}
        con.execute("RELEASE batch_item")
        self.store._bump(con, "batch_items")
        return {"bId": bid, entity: render(doc)}


def project(doc: dict, fields: list[str]) -> dict:
    """A queried document as a projection answers it: `domain`, `sparse: true` and the named fields
    (a dotted name, `MetaData.LastUpdatedTime`, keeps that part of its object)."""
    def key(obj: Any, name: str) -> str | None:  # field names are case-insensitive in a query
        return next((k for k in obj if k.lower() == name.lower()), None) if isinstance(obj, dict) else None

    out: dict[str, Any] = {"domain": doc.get("domain", "QBO"), "sparse": True}
    for name in fields:
        source, path = doc, []
        for part in name.split("."):
            found = key(source, part)
            if found is None:
                break
            source, path = source[found], [*path, found]
        else:
            target = out
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = source
    return out


def _now(emulator: QuickBooksEmulator) -> str:
    """An answer's `time`: the company's clock."""
    return qbo_time(emulator.store.clock_ms())
