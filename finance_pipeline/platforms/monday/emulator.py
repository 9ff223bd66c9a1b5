"""monday.com platform API emulator: `POST /v2`, GraphQL, boards / columns / items as a destination.

- Auth: `Authorization: <personal API token>` (a `Bearer ` prefix is accepted too); anything else
  → 401 `{"errors":[{"message":"Not Authenticated","extensions":{"code":"UNAUTHORIZED"}}]}`.
- `API-Version`: one of `SUPPORTED_VERSIONS` (none = the current one); answers carry it back.
- Every document is parsed and validated by graphql-core against `schema.SDL` before anything runs;
  validation errors come back in `errors[]` with `extensions.code = "GRAPHQL_VALIDATION_FAILED"`.
- Complexity: each document is costed before it runs (approximation of monday's model: 10 000 per
  mutation, 500 + limit × (cost of an item) per items page, …); one document may cost ≤ 5 000 000;
  the account has 10 000 000 points per minute (`complexity_budget`, the minute compressed by the
  time scale).  Over budget → HTTP 429, `Retry-After`, `COMPLEXITY_BUDGET_EXHAUSTED` with
  `retry_in_seconds` (API ≥ 2025-07; older versions: `ComplexityException`).  `complexity { before
  after query reset_in_x_seconds }` reports it when asked.
- Minute limit: `requests_per_minute` (Pro plan: 500) → 429 `RATE_LIMIT_EXCEEDED` + `Retry-After`.
- Column values are validated like monday does: status labels must exist (unless
  `create_labels_if_missing`), numbers are strings holding a number, dates `{"date":"YYYY-MM-DD"}`;
  a refusal is a `ColumnValueException` with `error_data`, in the `errors[]` entry whose `path` is
  the field's alias (the other aliased mutations of the request still run).
- State (boards, columns, items, values) in `<sandbox root>/monday.sqlite`.
"""
from __future__ import annotations

import math
import re
import secrets
import threading
import time
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from graphql import (
    FieldNode, GraphQLError, GraphQLScalarType, InlineFragmentNode, OperationDefinitionNode, build_schema,
    execute, parse, validate, value_from_ast_untyped,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.ratelimit import SlidingWindow
from finance_pipeline.platforms.monday.schema import SDL
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, PageCache, json_response
from finance_pipeline.sandbox.sqlite_state import SqliteState
from finance_pipeline.sandbox.store import Sandbox

CURRENT_VERSION = "2026-10"
SUPPORTED_VERSIONS = ("2025-04", "2025-07", "2025-10", "2026-01", "2026-04", "2026-07", "2026-10", "2027-01")
COMPLEXITY_PER_MINUTE = 10_000_000  # personal token, paid plan
MAX_QUERY_COMPLEXITY = 5_000_000
REQUESTS_PER_MINUTE = 500  # Pro plan (secondary sources; monday publishes the numbers per plan)
MUTATION_COST = 10_000
PAGE_FIELDS = ("items_page", "next_items_page", "items_page_by_column_values")
MAX_PAGE = 500
CURSOR_TTL_S = 3600.0

STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS boards (id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL,
    description TEXT, state TEXT NOT NULL DEFAULT 'active');
CREATE TABLE IF NOT EXISTS columns_ (board_id INTEGER NOT NULL, id TEXT NOT NULL, title TEXT NOT NULL,
    type TEXT NOT NULL, settings TEXT NOT NULL, pos INTEGER NOT NULL, PRIMARY KEY (board_id, id));
CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, board_id INTEGER NOT NULL, name TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS items_by_board ON items (board_id, id);
CREATE INDEX IF NOT EXISTS items_by_name ON items (board_id, name);
CREATE TABLE IF NOT EXISTS item_values (item_id INTEGER NOT NULL, board_id INTEGER NOT NULL,
    column_id TEXT NOT NULL, value TEXT, text TEXT, PRIMARY KEY (item_id, column_id));
CREATE INDEX IF NOT EXISTS values_by_text ON item_values (board_id, column_id, text);
"""


class MondayError(Exception):
    """An application error as monday reports it in `errors[]`."""

    def __init__(self, code: str, message: str, error_data: dict | None = None, status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_data = error_data or {}
        self.status = status


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_json_arg(value: Any) -> Any:
    """monday's `JSON` arguments arrive as JSON *strings* (double encoded); an object literal is taken too."""
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise GraphQLError(f"Invalid JSON: {value[:80]}") from None
    return value


def _scalars(schema) -> None:  # noqa: ANN001
    json_type: GraphQLScalarType = schema.type_map["JSON"]
    json_type.parse_value = lambda v: v
    json_type.parse_literal = lambda node, variables=None: value_from_ast_untyped(node, variables)
    json_type.serialize = lambda v: v
    compare: GraphQLScalarType = schema.type_map["CompareValue"]
    compare.parse_value = lambda v: v
    compare.parse_literal = lambda node, variables=None: value_from_ast_untyped(node, variables)


# -- column values -------------------------------------------------------------------------------

def status_labels(settings: dict) -> dict[int, str]:
    return {int(k): v for k, v in (settings.get("labels") or {}).items()}


def validate_value(column: dict, raw: Any, create_labels: bool = False) -> tuple[str | None, str, dict | None]:
    """(value JSON text or None, display text, new settings or None) — or MondayError like monday's."""
    ctype, cid = column["type"], column["id"]
    data = {"column_id": cid, "column_type": ctype, "column_value": raw if isinstance(raw, str) else
            orjson.dumps(raw).decode()}
    if raw is None or raw == "" or raw == {}:
        return None, "", None
    stamp = _now()
    if ctype in ("text", "long_text", "email"):
        if isinstance(raw, dict) and "text" in raw:
            raw = raw["text"]
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            raise MondayError("ColumnValueException", "invalid value, a text column takes a string", data)
        text = str(raw)
        if len(text) > 2000:
            raise MondayError("ColumnValueException", "text is longer than 2000 characters", data)
        return orjson.dumps(text).decode(), text, None
    if ctype == "numbers":
        if not isinstance(raw, str):
            raise MondayError("ColumnValueException", "invalid value, numbers are sent as a string, e.g. \"12.50\"",
                              data)
        try:
            number = Decimal(raw.strip())
        except InvalidOperation:
            raise MondayError("ColumnValueException", f"invalid value, '{raw}' is not a number", data) from None
        if not number.is_finite():
            raise MondayError("ColumnValueException", f"invalid value, '{raw}' is not a number", data)
        text = raw.strip()
        return orjson.dumps(text).decode(), text, None
    if ctype == "date":
        day = raw.get("date") if isinstance(raw, dict) else raw if isinstance(raw, str) else None
        if not isinstance(day, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            raise MondayError("ColumnValueException", "invalid value, dates are {\"date\":\"YYYY-MM-DD\"}", data)
        try:
            date.fromisoformat(day)
        except ValueError:
            raise MondayError("ColumnValueException", f"invalid date '{day}'", data) from None
        value = {"date": day, "changed_at": stamp}
        if isinstance(raw, dict) and raw.get("time"):
            value["time"] = raw["time"]
        return orjson.dumps(value).decode(), day, None
    if ctype == "status":
        settings = column["settings"]
        labels = status_labels(settings)
        if isinstance(raw, str):
            raw = {"label": raw}
        if not isinstance(raw, dict) or not ({"label", "index"} & raw.keys()):
            raise MondayError("ColumnValueException", "invalid value, a status takes {\"label\": …} or {\"index\": …}",
                              data)
        if "index" in raw:
            index = raw["index"]
            if not isinstance(index, int) or index not in labels:
                raise MondayError("ColumnValueException", f"This status index doesn't exist: {index}", data)
            return orjson.dumps({"index": index, "post_id": None, "changed_at": stamp}).decode(), labels[index], None
        label = str(raw["label"])
        by_label = {v: k for k, v in labels.items()}
        new_settings = None
        if label not in by_label:
            if not create_labels:
                possible = ", ".join(f"{k}: {v}" for k, v in sorted(labels.items()))
                raise MondayError("ColumnValueException",
                                  f"This status label doesn't exist, possible statuses are: {{{possible}}}", data)
            index = max(labels, default=-1) + 1
            labels[index] = label
            by_label[label] = index
            new_settings = {**settings, "labels": {str(k): v for k, v in sorted(labels.items())}}
        return (orjson.dumps({"index": by_label[label], "post_id": None, "changed_at": stamp}).decode(), label,
                new_settings)
    raise MondayError("ColumnValueException", f"column type {ctype} cannot be written through this API", data)


# -- complexity -----------------------------------------------------------------------------------

def _arg(field: FieldNode, name: str, variables: dict) -> Any:
    for arg in field.arguments or ():
        if arg.name.value == name:
            return value_from_ast_untyped(arg.value, variables)
    return None


def document_cost(selections, variables: dict) -> int:  # noqa: ANN001
    """An approximation of monday's complexity: what a document asks for, multiplied by the lists
    it pages through."""
    total = 0
    for sel in selections or ():
        if isinstance(sel, InlineFragmentNode):
            total += document_cost(sel.selection_set.selections, variables)
            continue
        if not isinstance(sel, FieldNode):
            continue
        name = sel.name.value
        children = document_cost(sel.selection_set.selections, variables) if sel.selection_set else 0
        if name in ("complexity", "version", "__typename"):
            continue
        if name in PAGE_FIELDS:
            limit = _arg(sel, "limit", variables) or 25
            total += 500 + int(limit) * max(children, 1)
        elif name == "boards":
            ids = _arg(sel, "ids", variables)
            count = len(ids) if isinstance(ids, list) else (_arg(sel, "limit", variables) or 25)
            total += 10 + int(count) * children
        elif name == "column_values":
            total += 10 + children
        elif name.startswith(("create_", "change_", "delete_")):
            total += MUTATION_COST + children
        else:
            total += (1 if sel.selection_set else 0) + children
    return total


class _Budget:
    """The account's complexity points in the current (compressed) minute."""

    def __init__(self, budget: int, window_s: float) -> None:
        self.budget = budget
        self.window_s = window_s
        self.started = time.monotonic()
        self.used = 0
        self.lock = threading.Lock()

    def reset_in(self, now: float) -> float:
        return max(0.0, self.started + self.window_s - now)

    def charge(self, cost: int) -> tuple[bool, int, int, float]:
        """(admitted, before, after, seconds until the budget resets)."""
        with self.lock:
            now = time.monotonic()
            if now - self.started >= self.window_s:
                self.started, self.used = now, 0
            before = self.budget - self.used
            if cost > before:
                return False, before, before, self.reset_in(now)
            self.used += cost
            return True, before, before - cost, self.reset_in(now)


class MondayEmulator(Emulator):
    name = "monday"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.state = SqliteState(sandbox.root / "monday.sqlite", STATE_SCHEMA)
        with self.state.tx() as con:
            con.execute("INSERT OR IGNORE INTO meta VALUES ('api_token', ?)", [secrets.token_urlsafe(32)])
            con.execute("INSERT OR IGNORE INTO meta VALUES ('account_id', '31415926')")
        self.meta = dict(self.state.read().execute("SELECT key, value FROM meta").fetchall())
        scale = self.config.time_scale
        self.complexity_budget = COMPLEXITY_PER_MINUTE
        self._budget = _Budget(COMPLEXITY_PER_MINUTE, 60.0 / scale)
        self._minute = SlidingWindow(REQUESTS_PER_MINUTE, 60, scale)
        self.schema = build_schema(SDL)
        _scalars(self.schema)
        self._wire_resolvers()
        self.pages = PageCache(max_entries=256, ttl_s=CURSOR_TTL_S / scale)
        self.post_delay_s = 0.0  # tests: hold each mutation's answer this long after it committed

    def set_complexity_budget(self, points: int) -> None:
        self.complexity_budget = points
        self._budget = _Budget(points, 60.0 / self.config.time_scale)

    # -- what clients and tests use --------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        return {"api_token": self.meta["api_token"], "api_url": f"{self.base_url}/v2"}

    def boards(self) -> list[dict]:
        rows = self.state.read().execute("SELECT id, name, kind FROM boards ORDER BY id").fetchall()
        return [{"id": str(r[0]), "name": r[1], "board_kind": r[2]} for r in rows]

    def items(self, board_id: str | int) -> list[dict]:
        """Every item of a board: {id, name, values: {column id: text}, raw: {column id: value JSON}}."""
        con = self.state.read()
        out: dict[int, dict] = {}
        for item_id, name in con.execute("SELECT id, name FROM items WHERE board_id = ? ORDER BY id", [int(board_id)]):
            out[item_id] = {"id": str(item_id), "name": name, "values": {}, "raw": {}}
        for item_id, column_id, value, text in con.execute(
                "SELECT item_id, column_id, value, text FROM item_values WHERE board_id = ?", [int(board_id)]):
            if item_id in out:
                out[item_id]["values"][column_id] = text
                out[item_id]["raw"][column_id] = value
        return list(out.values())

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(self.state.counters())
        out["items"] = self.state.read().execute("SELECT COUNT(*) FROM items").fetchone()[0]
        return out

    def routes(self) -> list[Route]:
        return [Route("/v2", self._graphql, methods=["POST"])]

    def fault_response(self, status: int) -> Response:
        if status == 429:
            return json_response({"errors": [{"message": "Rate Limit Exceeded", "extensions": {
                "code": "RATE_LIMIT_EXCEEDED", "retry_in_seconds": 1}}]}, 429, {"Retry-After": "1"})
        return json_response({"errors": [{"message": "Internal server error", "extensions": {
            "code": "INTERNAL_SERVER_ERROR", "status_code": status}}]}, status)

    # -- the endpoint --------------------------------------------------------------------------------
    async def _graphql(self, request: Request) -> Response:
        token = request.headers.get("authorization", "")
        if token.lower().startswith("bearer "):
            token = token[7:]
        if not secrets.compare_digest(token.encode(), self.meta["api_token"].encode()):
            return json_response({"errors": [{"message": "Not Authenticated", "extensions": {
                "code": "UNAUTHORIZED", "status_code": 401}}]}, 401)
        version = request.headers.get("api-version") or CURRENT_VERSION
        if version not in SUPPORTED_VERSIONS:
            return json_response({"errors": [{"message": f"Invalid API version {version!r}; supported: "
                                                         f"{', '.join(SUPPORTED_VERSIONS)}",
                                              "extensions": {"code": "InvalidVersionException"}}]}, 400)
        headers = {"API-Version": version}
        wait = self._minute.try_acquire()
        if wait > 0:
            retry = max(1, math.ceil(wait))
            return self.refuse(json_response({"errors": [{"message": "Rate Limit Exceeded", "extensions": {
                "code": "RATE_LIMIT_EXCEEDED", "retry_in_seconds": retry}}]}, 429,
                {**headers, "Retry-After": f"{wait:.3f}"}))
        try:
            body = orjson.loads(await request.body())
            query, variables = body["query"], body.get("variables") or {}
            document = parse(query)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return json_response({"errors": [{"message": "No query string was present", "extensions": {
                "code": "BAD_REQUEST"}}]}, 400, headers)
        except GraphQLError as exc:
            return json_response({"errors": [self._format(exc, "GRAPHQL_PARSE_FAILED")]}, 200, headers)
        problems = validate(self.schema, document)
        if problems:
            return json_response({"errors": [self._format(e, "GRAPHQL_VALIDATION_FAILED") for e in problems]},
                                 200, headers)
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        cost = document_cost(operation.selection_set.selections, variables)
        if cost > MAX_QUERY_COMPLEXITY:
            return json_response({"errors": [{"message": f"Query has complexity of {cost}, which exceeds max "
                                                         f"complexity of {MAX_QUERY_COMPLEXITY}",
                                              "extensions": {"code": "maxComplexityExceeded", "complexity": cost,
                                                             "maxComplexity": MAX_QUERY_COMPLEXITY}}]}, 200, headers)
        admitted, before, after, reset_in = self._budget.charge(cost)
        reset_s = max(1, math.ceil(reset_in))
        if not admitted:
            self.counters["complexity_refused"] += 1
            if version >= "2025-07":
                error = {"message": "Complexity budget exhausted", "extensions": {
                    "code": "COMPLEXITY_BUDGET_EXHAUSTED", "retry_in_seconds": reset_s}}
            else:
                error = {"message": f"Complexity budget exhausted, query cost {cost} budget remaining {before} out "
                                    f"of {self.complexity_budget} reset in {reset_s} seconds",
                         "extensions": {"code": "ComplexityException", "complexity": cost,
                                        "complexity_budget_left": before,
                                        "complexity_budget_limit": self.complexity_budget, "status_code": 429}}
            return self.refuse(json_response({"errors": [error]}, 429, {**headers,
                                                                         "Retry-After": f"{max(reset_in, 0.01):.3f}"}))
        context = {"complexity": {"before": before, "after": after, "query": cost, "reset_in_x_seconds": reset_s}}
        result = execute(self.schema, document, variable_values=variables, context_value=context)
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [self._format(e) for e in result.errors]
        out["account_id"] = int(self.meta["account_id"])
        if operation.operation.value == "mutation" and self.post_delay_s:
            import asyncio

            await asyncio.sleep(self.post_delay_s)
        return json_response(out, 200, headers)

    @staticmethod
    def _format(error: GraphQLError, code: str | None = None) -> dict:
        original = error.original_error
        entry: dict[str, Any] = {"message": original.message if isinstance(original, MondayError) else error.message}
        if error.locations:
            entry["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
        if error.path:
            entry["path"] = list(error.path)
        if isinstance(original, MondayError):
            entry["extensions"] = {"code": original.code, "status_code": original.status,
                                   **({"error_data": original.error_data} if original.error_data else {})}
        else:
            entry["extensions"] = {"code": code or "INTERNAL_SERVER_ERROR"}
        return entry

    # -- resolvers -----------------------------------------------------------------------------------
    def _wire_resolvers(self) -> None:
        q, m = self.schema.query_type.fields, self.schema.mutation_type.fields
        q["boards"].resolve = self._boards
        q["items"].resolve = self._items
        q["items_page_by_column_values"].resolve = self._items_by_values
        q["next_items_page"].resolve = self._next_page
        q["complexity"].resolve = m["complexity"].resolve = lambda root, info: info.context["complexity"]
        q["version"].resolve = lambda root, info: {"kind": "current", "value": CURRENT_VERSION,
                                                   "display_name": "Current"}
        board = self.schema.type_map["Board"].fields
        board["columns"].resolve = self._columns
        board["items_page"].resolve = self._items_page
        board["items_count"].resolve = lambda b, info: self.state.read().execute(
            "SELECT COUNT(*) FROM items WHERE board_id = ?", [int(b["id"])]).fetchone()[0]
        item = self.schema.type_map["Item"].fields
        item["column_values"].resolve = self._column_values
        item["board"].resolve = lambda it, info: self._board(it["board_id"])
        m["create_board"].resolve = self._create_board
        m["create_column"].resolve = self._create_column
        m["create_item"].resolve = self._create_item
        m["change_multiple_column_values"].resolve = self._change_multiple
        m["change_column_value"].resolve = self._change_one
        m["change_simple_column_value"].resolve = self._change_one
        m["delete_item"].resolve = self._delete_item

    def _board(self, board_id: Any) -> dict:
        try:
            bid = int(board_id)
        except (TypeError, ValueError):
            bid = -1
        row = self.state.read().execute("SELECT id, name, kind, description, state FROM boards WHERE id = ?",
                                        [bid]).fetchone()
        if row is None:
            raise MondayError("InvalidBoardIdException", "The board does not exist. Please check your board ID and "
                                                         "try again", {"board_id": board_id})
        return {"id": str(row[0]), "name": row[1], "board_kind": row[2], "description": row[3], "state": row[4]}

    def _board_columns(self, board_id: int) -> dict[str, dict]:
        rows = self.state.read().execute(
            "SELECT id, title, type, settings FROM columns_ WHERE board_id = ? ORDER BY pos", [board_id]).fetchall()
        return {r[0]: {"id": r[0], "title": r[1], "type": r[2], "settings": orjson.loads(r[3]),
                       "settings_str": r[3], "archived": False} for r in rows}

    def _boards(self, root, info, ids=None, limit=None, page=None, state="active", board_kind=None):  # noqa: ANN001
        sql, args = "SELECT id FROM boards WHERE 1 = 1", []
        if ids:
            sql += f" AND id IN ({', '.join('?' * len(ids))})"
            args += [int(i) if str(i).isdigit() else -1 for i in ids]
        if state != "all":
            sql += " AND state = ?"
            args.append(state)
        size = int(limit or 25)
        sql += " ORDER BY id LIMIT ? OFFSET ?"
        args += [size, (int(page or 1) - 1) * size]
        return [self._board(r[0]) for r in self.state.read().execute(sql, args).fetchall()]

    def _columns(self, board, info, ids=None, types=None):  # noqa: ANN001
        cols = list(self._board_columns(int(board["id"])).values())
        return [c for c in cols if (not ids or c["id"] in ids) and (not types or c["type"] in types)]

    def _item_rows(self, ids: list[int]) -> list[dict]:
        if not ids:
            return []
        con = self.state.read()
        marks = ", ".join("?" * len(ids))
        rows = {r[0]: {"id": str(r[0]), "board_id": r[1], "name": r[2], "created_at": r[3], "updated_at": r[4],
                       "state": "active", "_values": {}}
                for r in con.execute(f"SELECT id, board_id, name, created_at, updated_at FROM items WHERE id IN ({marks})",
                                     ids)}
        for item_id, column_id, value, text in con.execute(
                f"SELECT item_id, column_id, value, text FROM item_values WHERE item_id IN ({marks})", ids):
            rows[item_id]["_values"][column_id] = (value, text)
        return [rows[i] for i in ids if i in rows]

    def _items(self, root, info, ids=None, limit=None, page=None):  # noqa: ANN001
        if not ids:
            return []
        if len(ids) > 100:
            raise MondayError("ArgumentException", "You can query up to 100 items by ids")
        return self._item_rows([int(i) for i in ids])

    def _column_values(self, item, info, ids=None, types=None):  # noqa: ANN001
        out = []
        for col in self._board_columns(item["board_id"]).values():
            if (ids and col["id"] not in ids) or (types and col["type"] not in types):
                continue
            if col["type"] == "name":
                value, text = None, item["name"]
            else:
                value, text = item["_values"].get(col["id"], (None, ""))
            out.append({"id": col["id"], "type": col["type"], "text": text, "value": value, "column": col})
        return out

    def _page(self, key: str, ids: list[int], offset: int, limit: int) -> dict:
        if limit < 1 or limit > MAX_PAGE:
            raise MondayError("ArgumentException", f"limit must be between 1 and {MAX_PAGE}")
        chunk = ids[offset:offset + limit]
        cursor = PageCache.token(key, offset + limit) if offset + limit < len(ids) else None
        return {"cursor": cursor, "items": self._item_rows(chunk)}

    def _items_page(self, board, info, limit=25, cursor=None, query_params=None):  # noqa: ANN001
        if cursor:
            return self._next_page(None, info, cursor, limit)
        board_id = int(board["id"])
        key, ids = self.pages.get(("page", board_id, orjson.dumps(query_params or {}), time.monotonic_ns()),
                                  lambda: self._matching(board_id, query_params or {}))
        return self._page(key, ids, 0, limit)

    def _matching(self, board_id: int, params: dict) -> list[int]:
        con = self.state.read()
        ids = [r[0] for r in con.execute("SELECT id FROM items WHERE board_id = ? ORDER BY id", [board_id])]
        if params.get("ids"):
            wanted = {int(i) for i in params["ids"]}
            ids = [i for i in ids if i in wanted]
        rules = params.get("rules") or []
        if not rules:
            return ids
        hits = []
        for rule in rules:
            values = rule.get("compare_value")
            values = [str(v) for v in (values if isinstance(values, list) else [values])]
            op = rule.get("operator") or "any_of"
            if op not in ("any_of", "not_any_of"):
                raise MondayError("ArgumentException", f"operator {op} is not supported by this emulator")
            matched = set(self._match_column(board_id, rule["column_id"], values))
            hits.append(matched if op == "any_of" else set(ids) - matched)
        combined = set.intersection(*hits) if (params.get("operator") or "and") == "and" else set.union(*hits)
        return [i for i in ids if i in combined]

    def _match_column(self, board_id: int, column_id: str, values: list[str]) -> list[int]:
        con = self.state.read()
        marks = ", ".join("?" * len(values))
        if column_id == "name":
            return [r[0] for r in con.execute(f"SELECT id FROM items WHERE board_id = ? AND name IN ({marks})",
                                               [board_id, *values])]
        if column_id not in self._board_columns(board_id):
            raise MondayError("InvalidColumnIdException", "This column ID doesn't exist for the board",
                              {"column_id": column_id, "board_id": board_id})
        return [r[0] for r in con.execute(
            f"SELECT item_id FROM item_values WHERE board_id = ? AND column_id = ? AND text IN ({marks})",
            [board_id, column_id, *values])]

    def _items_by_values(self, root, info, board_id, columns=None, cursor=None, limit=25):  # noqa: ANN001
        if cursor:
            return self._next_page(None, info, cursor, limit)
        bid = int(self._board(board_id)["id"])
        rules = [{"column_id": c["column_id"], "compare_value": c["column_values"]} for c in columns or []]
        key, ids = self.pages.get(("byvalues", bid, orjson.dumps(rules), time.monotonic_ns()),
                                  lambda: self._matching(bid, {"rules": rules}))
        return self._page(key, ids, 0, limit)

    def _next_page(self, root, info, cursor, limit=25):  # noqa: ANN001
        try:
            token = PageCache.parse_token(cursor)
            ids = self.pages.lookup(token["k"])
        except (ValueError, KeyError, TypeError):
            ids = None
            token = {}
        if ids is None:
            raise MondayError("CursorExpiredError", "The cursor provided for pagination has expired or is invalid; "
                                                    "start again from the first page")
        return self._page(token["k"], ids, int(token["o"]), limit)

    # -- mutations -----------------------------------------------------------------------------------
    def _create_board(self, root, info, board_name, board_kind, description=None, workspace_id=None,  # noqa: ANN001
                      empty=None):
        with self.state.tx() as con:
            (top,) = con.execute("SELECT COALESCE(MAX(id), 1800000000) FROM boards").fetchone()
            bid = top + 1 + secrets.randbelow(1000)
            con.execute("INSERT INTO boards VALUES (?, ?, ?, ?, 'active')", [bid, board_name, board_kind, description])
            con.execute("INSERT INTO columns_ VALUES (?, 'name', 'Name', 'name', '{}', 0)", [bid])
            self.state.bump(con, "boards_created")
        return self._board(bid)

    def _create_column(self, root, info, board_id, title, column_type, id=None, description=None,  # noqa: A002,ANN001
                       defaults=None, after_column_id=None):
        bid = int(self._board(board_id)["id"])
        settings = _parse_json_arg(defaults) if defaults is not None else {}
        if column_type == "status":
            labels = settings.get("labels") or {}
            if isinstance(labels, list):  # [{"label", "index"}] form
                labels = {str(x.get("index", i)): x["label"] for i, x in enumerate(labels)}
            settings = {**settings, "labels": {str(k): v for k, v in labels.items()}}
        column_id = id or f"{column_type[:5]}_{secrets.token_hex(4)}"
        if not re.fullmatch(r"[a-z0-9_]{1,20}", column_id):
            raise MondayError("ColumnIdException", "Column id must be 1-20 lower case letters, digits or _")
        with self.state.tx() as con:
            if con.execute("SELECT 1 FROM columns_ WHERE board_id = ? AND id = ?", [bid, column_id]).fetchone():
                raise MondayError("ColumnIdException", f"A column with id {column_id} already exists on the board")
            (pos,) = con.execute("SELECT COALESCE(MAX(pos), 0) + 1 FROM columns_ WHERE board_id = ?", [bid]).fetchone()
            con.execute("INSERT INTO columns_ VALUES (?, ?, ?, ?, ?, ?)",
                        [bid, column_id, title, column_type, orjson.dumps(settings).decode(), pos])
        return self._board_columns(bid)[column_id]

    def _write_values(self, con, bid: int, item_id: int, values: Any, create_labels: bool) -> None:  # noqa: ANN001
        values = _parse_json_arg(values) if values is not None else {}
        if not isinstance(values, dict):
            raise MondayError("ColumnValueException", "column_values must be a JSON object of column id → value")
        columns = self._board_columns(bid)
        prepared = []
        for column_id, raw in values.items():
            col = columns.get(column_id)
            if col is None:
                raise MondayError("InvalidColumnIdException", "This column ID doesn't exist for the board",
                                  {"column_id": column_id, "board_id": bid})
            if col["type"] == "name":
                prepared.append(("name", raw, None, None))
                continue
            value, text, new_settings = validate_value(col, raw, create_labels)
            prepared.append((column_id, value, text, new_settings))
        for column_id, value, text, new_settings in prepared:  # all valid: nothing half-written
            if column_id == "name":
                con.execute("UPDATE items SET name = ? WHERE id = ?", [str(value), item_id])
                continue
            if new_settings is not None:
                con.execute("UPDATE columns_ SET settings = ? WHERE board_id = ? AND id = ?",
                            [orjson.dumps(new_settings).decode(), bid, column_id])
            con.execute("INSERT INTO item_values VALUES (?, ?, ?, ?, ?) ON CONFLICT (item_id, column_id) DO UPDATE "
                        "SET value = excluded.value, text = excluded.text", [item_id, bid, column_id, value, text])
        con.execute("UPDATE items SET updated_at = ? WHERE id = ?", [_now(), item_id])

    def _create_item(self, root, info, board_id, item_name, column_values=None, group_id=None,  # noqa: ANN001
                     create_labels_if_missing=None):
        bid = int(self._board(board_id)["id"])
        if not item_name or len(item_name) > 255:
            raise MondayError("ItemNameTooLongException", "Item name must be between 1 and 255 characters")
        with self.state.tx() as con:
            (top,) = con.execute("SELECT COALESCE(MAX(id), 9876543000) FROM items").fetchone()
            item_id = top + 1 + secrets.randbelow(7)
            stamp = _now()
            con.execute("INSERT INTO items VALUES (?, ?, ?, ?, ?)", [item_id, bid, item_name, stamp, stamp])
            self._write_values(con, bid, item_id, column_values, bool(create_labels_if_missing))
            self.state.bump(con, "items_created")
        return self._item_rows([item_id])[0]

    def _item_of(self, con, bid: int, item_id: Any) -> int:  # noqa: ANN001
        try:
            iid = int(item_id)
        except (TypeError, ValueError):
            iid = -1
        if not con.execute("SELECT 1 FROM items WHERE id = ? AND board_id = ?", [iid, bid]).fetchone():
            raise MondayError("InvalidItemIdException", "Item not found in board", {"item_id": item_id})
        return iid

    def _change_multiple(self, root, info, board_id, column_values, item_id=None,  # noqa: ANN001
                         create_labels_if_missing=None):
        bid = int(self._board(board_id)["id"])
        with self.state.tx() as con:
            iid = self._item_of(con, bid, item_id)
            self._write_values(con, bid, iid, column_values, bool(create_labels_if_missing))
            self.state.bump(con, "items_changed")
        return self._item_rows([iid])[0]

    def _change_one(self, root, info, board_id, column_id, value=None, item_id=None,  # noqa: ANN001
                    create_labels_if_missing=None):
        raw = _parse_json_arg(value) if info.field_name == "change_column_value" else value
        return self._change_multiple(root, info, board_id, {column_id: raw}, item_id, create_labels_if_missing)

    def _delete_item(self, root, info, item_id=None):  # noqa: ANN001
        rows = self._item_rows([int(item_id)]) if str(item_id or "").isdigit() else []
        if not rows:
            raise MondayError("InvalidItemIdException", "Item not found", {"item_id": item_id})
        with self.state.tx() as con:
            con.execute("DELETE FROM item_values WHERE item_id = ?", [int(item_id)])
            con.execute("DELETE FROM items WHERE id = ?", [int(item_id)])
            self.state.bump(con, "items_deleted")
        return {**rows[0], "state": "deleted"}
