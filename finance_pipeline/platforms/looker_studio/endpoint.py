"""The HTTP endpoint the Looker Studio Community Connector (`connectors/looker_studio/Code.gs`) reads.

ASGI (Starlette), serving the snapshot files only (`snapshot.py`; it never opens the warehouse):
- `GET  /connector/tables`     the marts of the current snapshot: name, label, rows, date column, version;
- `POST /connector/getSchema`  body = the connector's `getSchema(request)` (`{configParams: {table}}`)
                               → `{schema: [{name, label, dataType, semantics: {conceptType, semanticType}}]}`;
- `POST /connector/getData`    body = the connector's `getData(request)` (`configParams.table`,
                               `fields: [{name}]`, optional `dateRange {startDate, endDate}` (YYYY-MM-DD,
                               inclusive, on the mart's date column) and `pagination {startRow (1-based),
                               rowCount}`) → `{schema: [requested fields, in their order], rows: [{values}],
                               filtersApplied: false}` (+ `totalRows`, `version`).
Every call needs `Authorization: Bearer <LOOKER_STUDIO_TOKEN>` (constant-time compare) → else 401.

Types: money (DECIMAL) is NUMBER / METRIC, sent as a JSON number written from the Decimal's own digits
(never through a float here; Apps Script's JSON.parse then holds it as a double, exact to the cent
for any amount below 10^13); `_home` amounts are CURRENCY_GBP, amounts in the row's own `currency`
plain NUMBER (a column mixes currencies).  Dates are YEAR_MONTH_DAY strings, timestamps
YEAR_MONTH_DAY_SECOND (UTC), ids text dimensions.

Run it: `finance-pipeline looker-endpoint` (uvicorn), or the sandbox starts it like an emulator.
"""
from __future__ import annotations

import hmac
import secrets
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.platforms.looker_studio.snapshot import (
    SnapshotReader, date_column, snapshot_dir, wire_column,
)
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.store import Sandbox, atomic_write
from finance_pipeline.settings import HOME_CURRENCY

MAX_ROWS = 200_000  # one getData answer at most (Apps Script's URL Fetch answers are capped at ~50 MB)


class BadRequest(Exception):
    pass


def field_kind(column: dict) -> str:
    """The wire kind of a snapshot column: its warehouse kind, ids (…_id, …_number) as text."""
    name, kind = column["name"], column["kind"]
    if kind in ("int", "text") and (name == "id" or name.endswith(("_id", "_number", "_ids"))):
        return "id"
    return kind


def schema_field(column: dict) -> dict:
    name = column["name"]
    kind = field_kind(column)
    label = name.replace("_", " ").capitalize()
    if kind == "decimal" and not name.endswith("_rate"):
        semantic = f"CURRENCY_{HOME_CURRENCY}" if name.endswith("_home") else "NUMBER"
        return {"name": name, "label": label, "dataType": "NUMBER", "defaultAggregationType": "SUM",
                "semantics": {"conceptType": "METRIC", "semanticType": semantic, "isReaggregatable": True}}
    if kind in ("decimal", "double") and name.endswith("_rate"):
        return {"name": name, "label": label, "dataType": "NUMBER",
                "semantics": {"conceptType": "DIMENSION", "semanticType": "NUMBER"}}
    if kind in ("int", "double"):
        return {"name": name, "label": label, "dataType": "NUMBER", "defaultAggregationType": "SUM",
                "semantics": {"conceptType": "METRIC", "semanticType": "NUMBER", "isReaggregatable": True}}
    if kind == "bool":
        return {"name": name, "label": label, "dataType": "BOOLEAN",
                "semantics": {"conceptType": "DIMENSION", "semanticType": "BOOLEAN"}}
    if kind == "date":
        return {"name": name, "label": label, "dataType": "STRING",
                "semantics": {"conceptType": "DIMENSION", "semanticType": "YEAR_MONTH_DAY",
                              "semanticGroup": "DATETIME"}}
    if kind == "timestamp":
        return {"name": name, "label": label, "dataType": "STRING",
                "semantics": {"conceptType": "DIMENSION", "semanticType": "YEAR_MONTH_DAY_SECOND",
                              "semanticGroup": "DATETIME"}}
    semantic = "COUNTRY_CODE" if name.endswith("country") else "TEXT"
    return {"name": name, "label": label, "dataType": "STRING",
            "semantics": {"conceptType": "DIMENSION", "semanticType": semantic}}


def _json(body: Any, status: int = 200, headers: dict | None = None) -> Response:
    return json_response(body, status, headers)


def _error(status: int, message: str, headers: dict | None = None) -> Response:
    return _json({"error": {"code": status, "message": message}}, status, headers)


def _day(value: Any, what: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise BadRequest(f"{what} must be YYYY-MM-DD, got {value!r}") from None


class ConnectorEndpoint:
    """The routes, over one snapshot directory and one bearer token."""

    def __init__(self, directory: Path, token: str) -> None:
        self.reader = SnapshotReader(directory)
        self._token = token.encode()
        self.served = 0

    def routes(self) -> list[Route]:
        return [Route("/connector/tables", self._guard(self.tables), methods=["GET"]),
                Route("/connector/getSchema", self._guard(self.get_schema), methods=["POST"]),
                Route("/connector/getData", self._guard(self.get_data), methods=["POST"])]

    def app(self) -> Starlette:
        return Starlette(routes=self.routes())

    def authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self._token)

    def _guard(self, handler):  # noqa: ANN001, ANN202
        async def guarded(request: Request) -> Response:
            if not self.authorised(request):
                return _error(401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="looker"'})
            try:
                body = orjson.loads(await request.body()) if request.method == "POST" else {}
                if not isinstance(body, dict):
                    raise BadRequest("the body must be a JSON object")
                self.served += 1
                return handler(body)
            except orjson.JSONDecodeError:
                return _error(400, "the body is not JSON")
            except BadRequest as exc:
                return _error(400, str(exc))
        return guarded

    def _table(self, body: dict):  # noqa: ANN202
        name = ((body.get("configParams") or {}).get("table") or "").strip()
        if not name:
            raise BadRequest("configParams.table is required")
        table = self.reader.table(name)
        if table is None:
            raise BadRequest(f"unknown table {name!r}; see GET /connector/tables")
        return table

    def tables(self, body: dict) -> Response:
        manifest = self.reader.manifest()
        return _json({"version": manifest["version"], "published_at": manifest.get("published_at"),
                      "tables": [{"name": n, "label": n.replace("_", " ").capitalize(), "rows": t["rows"],
                                  "dateColumn": t.get("date_column")} for n, t in manifest["tables"].items()]})

    def get_schema(self, body: dict) -> Response:
        table = self._table(body)
        return _json({"schema": [schema_field(c) for c in table.meta["columns"]]})

    def get_data(self, body: dict) -> Response:
        import pyarrow as pa
        import pyarrow.compute as pc

        table = self._table(body)
        columns = {c["name"]: c for c in table.meta["columns"]}
        wanted = [f.get("name") for f in body.get("fields") or [] if isinstance(f, dict)]
        if not wanted:
            raise BadRequest("fields must name at least one field")
        unknown = [n for n in wanted if n not in columns]
        if unknown:
            raise BadRequest(f"unknown field(s) {', '.join(map(str, unknown))} in {table.name}")
        data = table.data
        date_range = body.get("dateRange")
        on = table.meta.get("date_column") or date_column(table.meta["columns"])
        if date_range and on:
            start = _day(date_range.get("startDate"), "dateRange.startDate")
            end = _day(date_range.get("endDate"), "dateRange.endDate")
            days = data.column(on)
            if pa.types.is_timestamp(days.type):
                days = pc.cast(days, pa.date32())
            mask = pc.and_(pc.greater_equal(days, pa.scalar(start, pa.date32())),
                           pc.less_equal(days, pa.scalar(end, pa.date32())))
            data = data.filter(pc.fill_null(mask, False))
        total = data.num_rows
        page = body.get("pagination") or {}
        first = int(page.get("startRow") or 1) - 1
        count = int(page.get("rowCount") or MAX_ROWS)
        if first < 0 or count < 1:
            raise BadRequest("pagination.startRow must be ≥ 1 and rowCount ≥ 1")
        count = min(count, MAX_ROWS)
        data = data.slice(first, count).select(wanted)
        kinds = [field_kind(columns[n]) for n in wanted]
        values = [wire_column(k, data.column(i)) for i, k in enumerate(kinds)]
        rows = [{"values": list(r)} for r in zip(*values)] if values else []
        return _json({"schema": [schema_field(columns[n]) for n in wanted], "rows": rows, "filtersApplied": False,
                      "totalRows": total, "version": table.meta.get("version")})


def sandbox_token(sandbox_root: Path) -> str:
    """The sandbox's connector token, made once and kept beside the world (0600)."""
    path = Path(sandbox_root) / "looker_studio_token"
    if not path.exists():
        atomic_write(path, secrets.token_urlsafe(32).encode(), mode=0o600)
    return path.read_text().strip()


class LookerStudioEndpoint(Emulator):
    """The sandbox starts the endpoint like an emulator (same port handling and endpoints file), over
    `<data dir>/looker_studio/`.  It is our own service, so no faults are injected into it."""

    name = "looker_studio"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.endpoint = ConnectorEndpoint(snapshot_dir(Path(sandbox.root).parent), sandbox_token(sandbox.root))

    def routes(self) -> list[Route]:
        return self.endpoint.routes()

    def faults_apply(self, method: str, path: str) -> bool:
        return False

    def credentials(self) -> dict[str, str]:
        return {"token": self.endpoint._token.decode()}


def serve_forever(data_dir: Path, token: str, host: str = "127.0.0.1", port: int = 8790) -> None:
    import uvicorn

    app = ConnectorEndpoint(snapshot_dir(data_dir), token).app()
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=False)


def run_from_cli(settings, host: str, port: int) -> int:  # noqa: ANN001
    """`finance-pipeline looker-endpoint`: LOOKER_STUDIO_TOKEN (required live; the sandbox's own token
    file otherwise), serving `<data dir>/looker_studio/` until stopped.  The token is never printed."""
    from finance_pipeline.settings import env, require_secret

    if settings.mode == "live" or env("LOOKER_STUDIO_TOKEN"):
        token = require_secret("LOOKER_STUDIO_TOKEN", "Set the bearer token the Looker Studio connector will send")
        where = "LOOKER_STUDIO_TOKEN"
        value = token.value
    else:
        value = sandbox_token(settings.sandbox_dir)
        where = str(Path(settings.sandbox_dir) / "looker_studio_token")
    print(f"looker studio connector endpoint: http://{host}:{port}/connector/ (snapshot "
          f"{snapshot_dir(settings.data_dir)}; bearer token from {where})", flush=True)
    serve_forever(settings.data_dir, value, host, port)
    return 0
