"""Power BI emulator: Entra ID token endpoint + the REST API v1.0 push-dataset routes, one port.

Paths are the real ones, so MSAL and our client work against it by changing hosts:
- `GET /{tenant}/v2.0/.well-known/openid-configuration`, `POST /{tenant}/oauth2/v2.0/token`
  (client credentials; scope `https://analysis.windows.net/powerbi/api/.default`);
- `GET|POST /v1.0/myorg/groups/{groupId}/datasets` (list / create a push dataset),
  `GET .../datasets/{id}/tables`, `PUT .../tables/{table}` (replace a table's schema),
  `POST|DELETE .../tables/{table}/rows` (append rows / delete all rows),
  `POST .../datasets/{id}/executeQueries` (the DAX subset the read-back uses:
  `EVALUATE ROW("n", COUNTROWS('t'), "c", SUM('t'[c]), ...)`).

Validation as the service does it: `defaultMode` and column `dataType` enums, ≤ 75 tables and
columns, unknown columns and values of the wrong type refused (the whole request: Power BI has no
per-row status), strings ≤ 4000 characters, ≤ 10 000 rows per POST.  Limits per dataset, scaled
by `config.time_scale`: 120 POST rows requests per minute (per hour once the table holds
≥ 250 000 rows), 1 000 000 rows per hour, 5 POST rows requests in flight → 429 + `Retry-After`.
State (datasets, tables, rows) lives in `<sandbox root>/powerbi.sqlite`.
"""
from __future__ import annotations

import json
import math
import re
import secrets
import threading
import time
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http.client import dumps
from finance_pipeline.http.ratelimit import ConcurrencyLimiter, SlidingWindow
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.sqlite_state import SqliteState
from finance_pipeline.sandbox.store import Sandbox

SCOPE = "https://analysis.windows.net/powerbi/api/.default"
LOGIN_HOST = "https://login.microsoftonline.com"
API = "/v1.0/myorg"
MODES = ("AsAzure", "AsOnPrem", "Push", "Streaming", "PushStreaming")
DATA_TYPES = {"int64": "Int64", "double": "Double", "decimal": "Decimal", "boolean": "Boolean", "bool": "Boolean",
              "datetime": "DateTime", "string": "String"}
MAX_TABLES = MAX_COLUMNS = 75
MAX_ROWS_PER_POST = 10_000
MAX_STRING = 4000
POSTS_PER_MINUTE = 120
ROWS_PER_HOUR = 1_000_000
BIG_TABLE_ROWS = 250_000  # past this, 120 POST rows per hour
MAX_PENDING_POSTS = 5
TOKEN_TTL_S = 3599

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (token TEXT PRIMARY KEY, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS datasets (id TEXT PRIMARY KEY, group_id TEXT NOT NULL, name TEXT NOT NULL,
    mode TEXT NOT NULL, retention TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tables_ (dataset_id TEXT NOT NULL, name TEXT NOT NULL, columns TEXT NOT NULL,
    PRIMARY KEY (dataset_id, name));
CREATE TABLE IF NOT EXISTS rows_ (seq INTEGER PRIMARY KEY AUTOINCREMENT, dataset_id TEXT NOT NULL,
    table_name TEXT NOT NULL, row TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rows_by_table ON rows_ (dataset_id, table_name);
"""

_ROW_EXPR = re.compile(r'^\s*EVALUATE\s+ROW\s*\((.*)\)\s*$', re.I | re.S)
_ITEM = re.compile(r'''"([^"]+)"\s*,\s*(COUNTROWS\s*\(\s*'([^']+)'\s*\)|SUM\s*\(\s*'([^']+)'\s*\[([^\]]+)\]\s*\))''',
                   re.I)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status,
                         {"RequestId": str(uuid.uuid4()), **(headers or {})})


def _loads(raw: bytes) -> Any:
    return json.loads(raw, parse_float=Decimal)


class BadValue(ValueError):
    pass


def check_value(column: dict, value: Any) -> Any:
    """The value as stored, or BadValue with the service's kind of message."""
    if value is None:
        return None
    kind = column["dataType"]
    name = column["name"]
    if kind == "Int64":
        if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, Decimal) and value == value.to_integral_value()):
            raise BadValue(f"Value '{value}' of column '{name}' cannot be converted to Int64")
        return int(value)
    if kind in ("Double", "Decimal"):
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            raise BadValue(f"Value '{value}' of column '{name}' cannot be converted to {kind}")
        return Decimal(value)
    if kind == "Boolean":
        if not isinstance(value, bool):
            raise BadValue(f"Value '{value}' of column '{name}' cannot be converted to Boolean")
        return value
    if kind == "DateTime":
        try:
            datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise BadValue(f"Value '{value}' of column '{name}' cannot be converted to DateTime") from None
        return str(value)
    if not isinstance(value, str):
        value = str(value)
    if len(value) > MAX_STRING:
        raise BadValue(f"Value of column '{name}' is {len(value)} characters long; the maximum is {MAX_STRING}")
    return value


class _DatasetLimits:
    def __init__(self, scale: float) -> None:
        self.minute = SlidingWindow(POSTS_PER_MINUTE, 60, scale)
        self.hour_posts = SlidingWindow(POSTS_PER_MINUTE, 3600, scale)
        self.rows_hour: list[tuple[float, int]] = []
        self.window_s = 3600 / scale
        self.pending = ConcurrencyLimiter(MAX_PENDING_POSTS)


class PowerBIEmulator(Emulator):
    name = "powerbi"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.state = SqliteState(sandbox.root / "powerbi.sqlite", SCHEMA)
        with self.state.tx() as con:
            for key in ("tenant_id", "client_id", "group_id"):
                con.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", [key, str(uuid.uuid4())])
            con.execute("INSERT OR IGNORE INTO meta VALUES ('client_secret', ?)", [secrets.token_urlsafe(24)])
        self.meta = dict(self.state.read().execute("SELECT key, value FROM meta").fetchall())
        self._limits: dict[str, _DatasetLimits] = {}
        self._limits_lock = threading.Lock()
        self.post_delay_s = 0.0  # tests: hold each POST rows answer this long after it committed

    # -- what clients and tests use ------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        m = self.meta
        return {"tenant_id": m["tenant_id"], "client_id": m["client_id"], "client_secret": m["client_secret"],
                "group_id": m["group_id"], "authority_host": LOGIN_HOST, "login_url": self.base_url,
                "api_url": f"{self.base_url}{API}"}

    def datasets(self) -> list[dict]:
        rows = self.state.read().execute(
            "SELECT id, group_id, name, mode, retention FROM datasets ORDER BY created_at, id").fetchall()
        return [dict(zip(("id", "group_id", "name", "mode", "retention"), r)) for r in rows]

    def tables(self, dataset_id: str) -> dict[str, list[dict]]:
        return {n: json.loads(c) for n, c in self.state.read().execute(
            "SELECT name, columns FROM tables_ WHERE dataset_id = ?", [dataset_id]).fetchall()}

    def rows(self, dataset_id: str, table: str) -> list[dict]:
        return [_loads(r[0]) for r in self.state.read().execute(
            "SELECT row FROM rows_ WHERE dataset_id = ? AND table_name = ? ORDER BY seq", [dataset_id, table])]

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(self.state.counters())
        out["datasets"] = self.state.read().execute("SELECT COUNT(*) FROM datasets").fetchone()[0]
        out["rows"] = self.state.read().execute("SELECT COUNT(*) FROM rows_").fetchone()[0]
        return out

    # -- routing ---------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        g = f"{API}/groups/{{group}}/datasets"
        return [
            Route("/{tenant}/v2.0/.well-known/openid-configuration", self._openid, methods=["GET"]),
            Route("/{tenant}/oauth2/v2.0/token", self._token, methods=["POST"]),
            Route(g, self._datasets, methods=["GET", "POST"]),
            Route(f"{g}/{{dataset}}", self._dataset, methods=["GET", "DELETE"]),
            Route(f"{g}/{{dataset}}/tables", self._tables, methods=["GET"]),
            Route(f"{g}/{{dataset}}/tables/{{table}}", self._put_table, methods=["PUT"]),
            Route(f"{g}/{{dataset}}/tables/{{table}}/rows", self._rows, methods=["POST", "DELETE"]),
            Route(f"{g}/{{dataset}}/executeQueries", self._execute_queries, methods=["POST"]),
        ]

    def faults_apply(self, method: str, path: str) -> bool:
        return path.startswith(API)

    def fault_response(self, status: int) -> Response:
        headers = {"Retry-After": "1"} if status == 429 else None
        return _error(status, "TooManyRequests" if status == 429 else "ServiceUnavailable", "injected fault", headers)

    # -- identity --------------------------------------------------------------------------------
    async def _openid(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        if tenant != self.meta["tenant_id"]:
            return json_response({"error": "invalid_tenant", "error_description": f"AADSTS90002: Tenant '{tenant}' "
                                  "not found."}, 400)
        base = f"{LOGIN_HOST}/{tenant}"
        return json_response({"issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
                              "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                              "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                              "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                                        "client_secret_basic"],
                              "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                              "tenant_region_scope": "EU"})

    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        if request.path_params["tenant"] != self.meta["tenant_id"]:
            return json_response({"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found."}, 400)
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if form.get("client_id") != self.meta["client_id"] or form.get("client_secret") != self.meta["client_secret"]:
            return json_response({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client "
                                  "secret provided."}, 401)
        if SCOPE not in (form.get("scope") or "").split():
            return json_response({"error": "invalid_scope", "error_description": "AADSTS1002012: The provided value "
                                  "for scope is not valid."}, 400)
        token = secrets.token_urlsafe(32)
        with self.state.tx() as con:
            con.execute("INSERT INTO tokens VALUES (?, ?)", [token, time.time() + TOKEN_TTL_S])
            self.state.bump(con, "tokens_issued")
        return json_response({"token_type": "Bearer", "expires_in": TOKEN_TTL_S, "ext_expires_in": TOKEN_TTL_S,
                              "access_token": token})

    def _authorise(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        row = self.state.read().execute("SELECT expires_at FROM tokens WHERE token = ?", [token.strip()]).fetchone()
        if scheme.lower() != "bearer" or row is None or row[0] < time.time():
            return _error(401, "TokenExpired" if row else "Unauthorized", "Access token is missing or invalid",
                          {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common"'})
        if request.path_params.get("group") not in (None, self.meta["group_id"]):
            return _error(404, "ItemNotFound", "Workspace not found or the principal has no access to it")
        return None

    def _dataset_row(self, request: Request) -> tuple | None:
        return self.state.read().execute("SELECT id, mode FROM datasets WHERE id = ? AND group_id = ?",
                                         [request.path_params["dataset"], request.path_params["group"]]).fetchone()

    # -- datasets ----------------------------------------------------------------------------------
    async def _datasets(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        group = request.path_params["group"]
        if request.method == "GET":
            rows = self.state.read().execute("SELECT id, name, mode, retention FROM datasets WHERE group_id = ? "
                                             "ORDER BY created_at, id", [group]).fetchall()
            return json_response({"@odata.context": f"{self.base_url}{API}/groups/{group}/$metadata#datasets",
                                  "value": [{"id": i, "name": n, "addRowsAPIEnabled": m in ("Push", "PushStreaming"),
                                             "isRefreshable": False, "targetStorageMode": "PremiumFiles"
                                             if m == "AsAzure" else "Abf", "defaultRetentionPolicy": r}
                                            for i, n, m, r in rows]})
        retention = request.query_params.get("defaultRetentionPolicy", "None")
        if retention.lower() not in ("none", "basicfifo"):
            return _error(400, "InvalidRequest", f"defaultRetentionPolicy '{retention}' is not valid")
        try:
            body = _loads(await request.body())
            tables = self._validate_dataset(body)
        except (ValueError, BadValue) as exc:
            return _error(400, "InvalidRequest", str(exc))
        dataset_id = str(uuid.uuid4())
        with self.state.tx() as con:
            con.execute("INSERT INTO datasets VALUES (?, ?, ?, ?, ?, ?)",
                        [dataset_id, group, body["name"], body.get("defaultMode", "Push"), retention,
                         datetime.utcnow().isoformat(timespec="microseconds")])
            for table in tables:
                con.execute("INSERT INTO tables_ VALUES (?, ?, ?)", [dataset_id, table["name"],
                                                                     json.dumps(table["columns"])])
            self.state.bump(con, "datasets_created")
        return json_response({"id": dataset_id, "name": body["name"], "defaultRetentionPolicy": retention}, 201,
                             {"Location": f"{self.base_url}{API}/groups/{group}/datasets/{dataset_id}"})

    @staticmethod
    def _validate_table(table: Any) -> dict:
        if not isinstance(table, dict) or not table.get("name"):
            raise ValueError("Table name is required")
        columns = table.get("columns")
        if not isinstance(columns, list) or not columns:
            raise ValueError(f"Table '{table['name']}' has no columns")
        if len(columns) > MAX_COLUMNS:
            raise ValueError(f"Table '{table['name']}' has {len(columns)} columns; the maximum is {MAX_COLUMNS}")
        out, seen = [], set()
        for col in columns:
            name, kind = (col or {}).get("name"), str((col or {}).get("dataType", ""))
            if not name:
                raise ValueError(f"A column of table '{table['name']}' has no name")
            if name.lower() in seen:
                raise ValueError(f"Column '{name}' appears twice in table '{table['name']}'")
            seen.add(name.lower())
            if kind.lower() not in DATA_TYPES:
                raise ValueError(f"Column '{name}': dataType '{kind}' is not supported "
                                 f"(Int64, Double, Decimal, Boolean, DateTime, String)")
            out.append({"name": name, "dataType": DATA_TYPES[kind.lower()]})
        return {"name": table["name"], "columns": out}

    def _validate_dataset(self, body: Any) -> list[dict]:
        if not isinstance(body, dict) or not body.get("name"):
            raise ValueError("Dataset name is required")
        mode = body.get("defaultMode", "Push")
        if mode not in MODES:
            raise ValueError(f"defaultMode '{mode}' is not valid ({', '.join(MODES)})")
        if mode not in ("Push", "PushStreaming", "Streaming"):
            raise ValueError(f"defaultMode '{mode}' cannot be created through the push API")
        tables = body.get("tables") or []
        if len(tables) > MAX_TABLES:
            raise ValueError(f"{len(tables)} tables; the maximum is {MAX_TABLES}")
        out = [self._validate_table(t) for t in tables]
        if len({t["name"].lower() for t in out}) != len(out):
            raise ValueError("Table names must be unique")
        return out

    async def _dataset(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        row = self._dataset_row(request)
        if row is None:
            return _error(404, "ItemNotFound", "Dataset not found")
        if request.method == "DELETE":
            with self.state.tx() as con:
                for table in ("rows_", "tables_"):
                    con.execute(f"DELETE FROM {table} WHERE dataset_id = ?", [row[0]])
                con.execute("DELETE FROM datasets WHERE id = ?", [row[0]])
            return Response(status_code=200)
        return json_response({"id": row[0], "defaultMode": row[1], "addRowsAPIEnabled": True})

    async def _tables(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        row = self._dataset_row(request)
        if row is None:
            return _error(404, "ItemNotFound", "Dataset not found")
        tables = self.tables(row[0])
        return json_response({"value": [{"name": n, "columns": c} for n, c in tables.items()]})

    async def _put_table(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        row = self._dataset_row(request)
        if row is None:
            return _error(404, "ItemNotFound", "Dataset not found")
        try:
            table = self._validate_table(_loads(await request.body()))
        except (ValueError, BadValue) as exc:
            return _error(400, "InvalidRequest", str(exc))
        if table["name"] != request.path_params["table"]:
            return _error(400, "InvalidRequest", "The table name in the body differs from the one in the path")
        with self.state.tx() as con:
            count = con.execute("SELECT COUNT(*) FROM tables_ WHERE dataset_id = ?", [row[0]]).fetchone()[0]
            exists = con.execute("SELECT 1 FROM tables_ WHERE dataset_id = ? AND name = ?",
                                 [row[0], table["name"]]).fetchone()
            if not exists and count >= MAX_TABLES:
                return _error(400, "InvalidRequest", f"the dataset already has {MAX_TABLES} tables")
            con.execute("INSERT INTO tables_ VALUES (?, ?, ?) ON CONFLICT (dataset_id, name) DO UPDATE SET "
                        "columns = excluded.columns", [row[0], table["name"], json.dumps(table["columns"])])
            # a changed schema drops the rows that no longer fit (the service's behaviour is not
            # documented; dropping them is the safe reading and the publisher reloads the table)
            con.execute("DELETE FROM rows_ WHERE dataset_id = ? AND table_name = ?", [row[0], table["name"]])
            self.state.bump(con, "tables_put")
        return json_response({"name": table["name"], "columns": table["columns"]})

    # -- rows ---------------------------------------------------------------------------------------
    def _limits_for(self, dataset_id: str) -> _DatasetLimits:
        with self._limits_lock:
            limits = self._limits.get(dataset_id)
            if limits is None:
                limits = self._limits[dataset_id] = _DatasetLimits(self.config.time_scale)
            return limits

    def _admit_post(self, dataset_id: str, table_rows: int, n_rows: int) -> Response | None:
        if not self.config.enforce_rate_limits:
            return None
        limits = self._limits_for(dataset_id)
        window = limits.hour_posts if table_rows >= BIG_TABLE_ROWS else limits.minute
        wait = window.try_acquire()
        if wait > 0:
            return self.refuse(_error(429, "TooManyRequests", "Too many POST rows requests for this dataset",
                                      {"Retry-After": str(max(1, math.ceil(wait)))}))
        now = time.monotonic()
        with self._limits_lock:
            limits.rows_hour = [(t, n) for t, n in limits.rows_hour if now - t < limits.window_s]
            used = sum(n for _, n in limits.rows_hour)
            if used + n_rows > ROWS_PER_HOUR:
                wait = limits.window_s - (now - limits.rows_hour[0][0])
                return self.refuse(_error(429, "TooManyRequests", "Row quota per hour exceeded for this dataset",
                                          {"Retry-After": str(max(1, math.ceil(wait)))}))
            limits.rows_hour.append((now, n_rows))
        return None

    async def _rows(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        row = self._dataset_row(request)
        if row is None:
            return _error(404, "ItemNotFound", "Dataset not found")
        dataset_id, table = row[0], request.path_params["table"]
        columns = self.tables(dataset_id).get(table)
        if columns is None:
            return _error(404, "ItemNotFound", f"Table '{table}' not found in the dataset")
        if request.method == "DELETE":
            with self.state.tx() as con:
                deleted = con.execute("DELETE FROM rows_ WHERE dataset_id = ? AND table_name = ?",
                                      [dataset_id, table]).rowcount
                self.state.bump(con, "row_deletes")
                self.state.bump(con, "rows_deleted", deleted)
            return Response(status_code=200)
        try:
            body = _loads(await request.body())
        except ValueError:
            return _error(400, "InvalidRequest", "The request body is not valid JSON")
        rows = body.get("rows") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            return _error(400, "InvalidRequest", "The request body must be {\"rows\": [...]}")
        if len(rows) > MAX_ROWS_PER_POST:
            return _error(400, "InvalidRequest", f"{len(rows)} rows in one request; the maximum is {MAX_ROWS_PER_POST}")
        by_name = {c["name"]: c for c in columns}
        stored = []
        try:
            for i, r in enumerate(rows):
                if not isinstance(r, dict):
                    raise BadValue(f"Row {i} is not an object")
                unknown = [k for k in r if k not in by_name]
                if unknown:
                    raise BadValue(f"Column '{unknown[0]}' was not found in table '{table}'")
                stored.append(dumps({k: check_value(by_name[k], v) for k, v in r.items()}).decode())
        except BadValue as exc:
            return _error(400, "InvalidRequest", f"Invalid value in rows: {exc}")
        table_rows = self.state.read().execute("SELECT COUNT(*) FROM rows_ WHERE dataset_id = ? AND table_name = ?",
                                               [dataset_id, table]).fetchone()[0]
        if (refused := self._admit_post(dataset_id, table_rows, len(rows))) is not None:
            return refused
        limits = self._limits_for(dataset_id)
        if self.config.enforce_rate_limits and limits.pending.try_acquire() > 0:
            return self.refuse(_error(429, "TooManyRequests", "Too many pending POST rows requests",
                                      {"Retry-After": "1"}))
        try:
            def commit() -> None:
                with self.state.tx() as con:
                    con.executemany("INSERT INTO rows_ (dataset_id, table_name, row) VALUES (?, ?, ?)",
                                    [(dataset_id, table, s) for s in stored])
                    self.state.bump(con, "row_posts")
                    self.state.bump(con, "rows_posted", len(stored))

            await run_in_threadpool(commit)
            if self.post_delay_s:
                import asyncio

                await asyncio.sleep(self.post_delay_s)
        finally:
            if self.config.enforce_rate_limits:
                limits.pending.release()
        return json_response({})

    # -- read-back ----------------------------------------------------------------------------------
    async def _execute_queries(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        row = self._dataset_row(request)
        if row is None:
            return _error(404, "ItemNotFound", "Dataset not found")
        try:
            queries = _loads(await request.body())["queries"]
        except (ValueError, KeyError, TypeError):
            return _error(400, "InvalidRequest", "Body must be {\"queries\": [{\"query\": \"EVALUATE ...\"}]}")
        if len(queries) != 1:
            return _error(400, "InvalidRequest", "Exactly one query per request is supported")
        match = _ROW_EXPR.match(queries[0].get("query", ""))
        items = _ITEM.findall(match.group(1)) if match else []
        if not items:
            return _error(400, "DatasetExecuteQueriesError", "Only EVALUATE ROW(\"name\", COUNTROWS('t') | "
                          "SUM('t'[c]), ...) is supported by the sandbox")
        return await run_in_threadpool(self._evaluate_row, row[0], items)

    def _evaluate_row(self, dataset_id: str, items: list) -> Response:
        """EVALUATE ROW(...) over the stored rows; each table is read once however many columns
        are summed (the read-back sums every money column of a table in one query)."""
        tables = self.tables(dataset_id)
        result: dict[str, Any] = {}
        loaded: dict[str, list] = {}
        for label, _, count_table, sum_table, sum_col in items:
            table = count_table or sum_table
            if table not in tables:
                return _error(400, "DatasetExecuteQueriesError", f"Cannot find table '{table}'.")
            if table not in loaded:
                loaded[table] = self.rows(dataset_id, table)
            data = loaded[table]
            if count_table:
                result[f"[{label}]"] = len(data)
            else:
                if sum_col not in {c["name"] for c in tables[table]}:
                    return _error(400, "DatasetExecuteQueriesError", f"Column '{sum_col}' in table '{table}' "
                                  "cannot be found")
                values = [Decimal(str(r[sum_col])) for r in data if r.get(sum_col) is not None]
                result[f"[{label}]"] = sum(values, Decimal(0)) if values else None
        return json_response({"results": [{"tables": [{"rows": [result]}]}]})
