"""Tableau Server / Cloud emulator: the REST API routes a data-source publisher uses, one port.

Paths under `/api/{version}/` as on the real server (any 3.x version is accepted):
- `POST auth/signin` (personal access token; one session per token: a new sign-in ends the
  previous session, whose token then gets 401 — the documented PAT behaviour), `POST auth/signout`,
  `GET serverinfo`;
- `GET sites/{site}/projects`, `GET sites/{site}/datasources` (`filter=name:eq:…`, `pageSize`,
  `pageNumber`), `GET sites/{site}/datasources/{id}`, `GET …/{id}/content` (a `.tdsx` holding the
  extract), `POST …/{id}/refresh` (refused for a data source without an upstream connection);
- `POST sites/{site}/datasources?datasourceType=hyper&overwrite=true` (multipart/mixed:
  `request_payload` + `tableau_datasource`), `POST sites/{site}/fileUploads`,
  `PUT sites/{site}/fileUploads/{id}` (multipart/mixed: `request_payload` + `tableau_file`) and the
  commit `POST sites/{site}/datasources?uploadSessionId=…`;
- data sources connected live to Postgres: a `.tds`/`.tdsx` publish (`datasourceType=tds|tdsx`) with a
  `postgres` connection and `<connectionCredentials embed="true">` (kept server-side, never in the
  stored file or a download); `POST …/{id}/createExtract` and `POST …/{id}/refresh` start a job that
  really connects to that server (loopback only) with the embedded credentials, reads the table and
  keeps it as the data source's `.hyper` extract (a refused password fails the job with the server's
  message); `GET sites/{site}/jobs/{id}`; extract refresh tasks with a Cloud schedule
  (`GET|POST sites/{site}/tasks/extractRefreshes`, `GET|POST|DELETE …/{task-id}`, `POST …/{task-id}/runNow`).

Validation as the server does it: session token (`X-Tableau-Auth`), site LUID in the path, a
datasource name and an existing project, `datasourceType` that matches the file (a `.hyper` must
be a Hyper file), `overwrite` and `append` not both, a name already in the project without
`overwrite` → 409, a single request over `max_single_request_bytes` (64 MB) → 413, an unknown
upload session → 404.  JSON answers when `Accept: application/json`, XML `tsResponse` otherwise.
State (sessions, data sources, uploads) in `<sandbox root>/tableau.sqlite`, files beside it.
"""
from __future__ import annotations

import io
import json
import re
import secrets
import time
import uuid
import zipfile
from datetime import datetime, timezone
from typing import Any
from xml.etree import ElementTree as ET

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.platforms.tableau import tds
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, json_response
from finance_pipeline.sandbox.sqlite_state import SqliteState
from finance_pipeline.sandbox.store import Sandbox

SINGLE_REQUEST_LIMIT = 64 * 1024 * 1024
SESSION_TTL_S = 240 * 60
DATASOURCE_TYPES = {"hyper": ".hyper", "tds": ".tds", "tdsx": ".tdsx", "tde": ".tde", "parquet": ".parquet"}
API_VERSION = "3.27"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, pat_name TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS datasources (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL,
    type TEXT NOT NULL, size INTEGER NOT NULL, file TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, UNIQUE (project_id, name));
CREATE TABLE IF NOT EXISTS uploads (id TEXT PRIMARY KEY, file TEXT NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ds_connections (datasource_id TEXT PRIMARY KEY, spec TEXT NOT NULL,
    username TEXT, password TEXT, embed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS extracts (datasource_id TEXT PRIMARY KEY, file TEXT NOT NULL, rows INTEGER NOT NULL,
    refreshed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, type TEXT NOT NULL, datasource_id TEXT NOT NULL,
    created_at TEXT NOT NULL, started_at TEXT, completed_at TEXT, finish_code INTEGER, notes TEXT);
CREATE TABLE IF NOT EXISTS tasks (id TEXT PRIMARY KEY, datasource_id TEXT NOT NULL, type TEXT NOT NULL,
    schedule TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
"""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _xml(tag: str, value: Any) -> ET.Element:
    el = ET.Element(tag)
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict):
                el.append(_xml(k, v))
            elif isinstance(v, list):
                for item in v:
                    el.append(_xml(k, item))
            elif v is not None:
                el.set(k, str(v))
    elif value is not None:
        el.text = str(value)
    return el


def respond(request: Request, body: dict, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON when the client asks for it (`Accept: application/json`), XML `tsResponse` otherwise."""
    if "json" in request.headers.get("accept", ""):
        return json_response(body, status, headers)
    root = _xml("tsResponse", body)
    root.set("xmlns", "http://tableau.com/api")
    return Response(ET.tostring(root, xml_declaration=True, encoding="UTF-8"), status, headers,
                    media_type="application/xml")


def error(request: Request, status: int, code: str, summary: str, detail: str) -> Response:
    return respond(request, {"error": {"code": code, "summary": summary, "detail": detail}}, status)


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[dict[str, str], bytes]]:
    """multipart/mixed (or form-data) → {part name: (headers, content)}; binary-safe."""
    m = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not m or not content_type.lower().startswith("multipart/"):
        raise ValueError("expected a multipart/mixed body with a boundary")
    delimiter = b"--" + m.group(1).encode()
    parts: dict[str, tuple[dict[str, str], bytes]] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("a multipart part has no header/body separator")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        name = re.search(r'name="([^"]*)"', headers.get("content-disposition", ""))
        if name:
            parts[name.group(1)] = (headers, content)
    return parts


def parse_payload(headers: dict[str, str], content: bytes) -> dict:
    """A request_payload (XML or JSON) → plain dict of the parts we need."""
    if not content.strip():
        return {}
    if "json" in headers.get("content-type", "") or content.lstrip().startswith(b"{"):
        return json.loads(content)
    root = ET.fromstring(content)

    def to_dict(el: ET.Element) -> dict:
        out: dict[str, Any] = dict(el.attrib)
        for child in el:
            tag, value = child.tag.split("}")[-1], to_dict(child)
            if tag in out:  # a repeated element (<interval/><interval/>) becomes a list
                out[tag] = (out[tag] if isinstance(out[tag], list) else [out[tag]]) + [value]
            else:
                out[tag] = value
        return out

    return {root.tag.split("}")[-1]: to_dict(root)}


class TableauEmulator(Emulator):
    name = "tableau"

    def __init__(self, sandbox: Sandbox, config: EmulatorConfig | None = None) -> None:
        super().__init__(sandbox, config)
        self.files = sandbox.root / "tableau_files"
        self.files.mkdir(parents=True, exist_ok=True)
        self.state = SqliteState(sandbox.root / "tableau.sqlite", SCHEMA)
        with self.state.tx() as con:
            for key, value in (("site_id", str(uuid.uuid4())), ("site_content_url", "finance"),
                               ("user_id", str(uuid.uuid4())), ("pat_name", "finance-pipeline"),
                               ("pat_secret", secrets.token_urlsafe(24))):
                con.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", [key, value])
            if con.execute("SELECT COUNT(*) FROM projects").fetchone()[0] == 0:
                con.executemany("INSERT INTO projects VALUES (?, ?)",
                                [(str(uuid.uuid4()), "default"), (str(uuid.uuid4()), "Finance")])
        self.meta = dict(self.state.read().execute("SELECT key, value FROM meta").fetchall())
        self.max_single_request_bytes = SINGLE_REQUEST_LIMIT
        self.publish_delay_s = 0.0  # tests: hold a publish answer this long after it committed
        import threading

        self._job_lock = threading.Lock()

    # -- what clients and tests use ----------------------------------------------------------------
    def credentials(self) -> dict[str, str]:
        m = self.meta
        return {"server_url": self.base_url, "site": m["site_content_url"], "pat_name": m["pat_name"],
                "pat_secret": m["pat_secret"], "project": "Finance", "api_version": API_VERSION}

    def datasources(self) -> list[dict]:
        cur = self.state.read().execute(
            "SELECT d.id, d.name, p.name, d.type, d.size, d.file, d.created_at, d.updated_at FROM datasources d "
            "JOIN projects p ON p.id = d.project_id ORDER BY d.created_at, d.name")
        return [dict(zip(("id", "name", "project", "type", "size", "file", "created_at", "updated_at"), r))
                for r in cur.fetchall()]

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(self.state.counters())
        out["datasources"] = self.state.read().execute("SELECT COUNT(*) FROM datasources").fetchone()[0]
        return out

    def routes(self) -> list[Route]:
        api, site = "/api/{version}", "/api/{version}/sites/{site}"
        return [
            Route(f"{api}/auth/signin", self._signin, methods=["POST"]),
            Route(f"{api}/auth/signout", self._signout, methods=["POST"]),
            Route(f"{api}/serverinfo", self._serverinfo, methods=["GET"]),
            Route(f"{site}/projects", self._projects, methods=["GET"]),
            Route(f"{site}/datasources", self._datasources, methods=["GET", "POST"]),
            Route(f"{site}/datasources/{{ds}}", self._datasource, methods=["GET"]),
            Route(f"{site}/datasources/{{ds}}/content", self._content, methods=["GET"]),
            Route(f"{site}/datasources/{{ds}}/refresh", self._refresh, methods=["POST"]),
            Route(f"{site}/datasources/{{ds}}/createExtract", self._create_extract, methods=["POST"]),
            Route(f"{site}/jobs/{{job}}", self._job, methods=["GET"]),
            Route(f"{site}/tasks/extractRefreshes", self._tasks, methods=["GET", "POST"]),
            Route(f"{site}/tasks/extractRefreshes/{{task}}", self._task, methods=["GET", "POST", "DELETE"]),
            Route(f"{site}/tasks/extractRefreshes/{{task}}/runNow", self._run_task, methods=["POST"]),
            Route(f"{site}/fileUploads", self._start_upload, methods=["POST"]),
            Route(f"{site}/fileUploads/{{upload}}", self._append_upload, methods=["PUT"]),
        ]

    def faults_apply(self, method: str, path: str) -> bool:
        return "/auth/" not in path

    def fault_response(self, status: int) -> Response:
        body = {"error": {"code": f"{status}000", "summary": "injected fault", "detail": "sandbox"}}
        return json_response(body, status, {"Retry-After": "1"} if status == 429 else None)

    # -- auth ---------------------------------------------------------------------------------------
    async def _signin(self, request: Request) -> Response:
        try:
            payload = parse_payload({"content-type": request.headers.get("content-type", "")}, await request.body())
            creds = payload["credentials"]
        except (ValueError, KeyError, ET.ParseError):
            return error(request, 400, "400000", "Bad Request", "The sign-in request body is not valid")
        site = (creds.get("site") or {}).get("contentUrl")
        name, secret = creds.get("personalAccessTokenName"), creds.get("personalAccessTokenSecret")
        if name != self.meta["pat_name"] or secret != self.meta["pat_secret"] or site != self.meta["site_content_url"]:
            return error(request, 401, "401001", "Signin Error", "Error signing in to Tableau Server")
        token = secrets.token_urlsafe(32)
        with self.state.tx() as con:
            ended = con.execute("DELETE FROM sessions WHERE pat_name = ?", [name]).rowcount  # one session per PAT
            con.execute("INSERT INTO sessions VALUES (?, ?, ?)", [token, name, time.time() + SESSION_TTL_S])
            self.state.bump(con, "signins")
            self.state.bump(con, "sessions_ended_by_signin", ended)
        return respond(request, {"credentials": {
            "token": token, "estimatedTimeToExpiration": "239:59:59",
            "site": {"id": self.meta["site_id"], "contentUrl": site},
            "user": {"id": self.meta["user_id"]}}})

    async def _signout(self, request: Request) -> Response:
        with self.state.tx() as con:
            con.execute("DELETE FROM sessions WHERE token = ?", [request.headers.get("x-tableau-auth", "")])
        return Response(status_code=204)

    async def _serverinfo(self, request: Request) -> Response:
        return respond(request, {"serverInfo": {"productVersion": {"value": "2025.3.0", "build": "20253.25.1"},
                                                "restApiVersion": API_VERSION}})

    def _authorise(self, request: Request) -> Response | None:
        token = request.headers.get("x-tableau-auth", "")
        row = self.state.read().execute("SELECT expires_at FROM sessions WHERE token = ?", [token]).fetchone()
        if row is None or row[0] < time.time():
            return error(request, 401, "401002", "Unauthorized Access",
                         "Invalid authentication credentials were provided.")
        if request.path_params.get("site") != self.meta["site_id"]:
            return error(request, 403, "403069", "Forbidden", "The site in the URL is not the signed-in site")
        return None

    # -- reads ----------------------------------------------------------------------------------------
    @staticmethod
    def _name_filter(request: Request) -> str | None:
        raw = request.query_params.get("filter")
        if not raw:
            return None
        field, _, rest = raw.partition(":")
        op, _, value = rest.partition(":")
        if field != "name" or op != "eq":
            raise ValueError(f"filter '{raw}' is not supported by the sandbox (name:eq:<value>)")
        return value

    def _page(self, request: Request, rows: list[dict], collection: str, item: str) -> Response:
        size = max(1, min(1000, int(request.query_params.get("pageSize", "100"))))
        number = max(1, int(request.query_params.get("pageNumber", "1")))
        chunk = rows[(number - 1) * size: number * size]
        return respond(request, {"pagination": {"pageNumber": str(number), "pageSize": str(size),
                                                "totalAvailable": str(len(rows))},
                                 collection: {item: chunk}})

    async def _projects(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        try:
            name = self._name_filter(request)
        except ValueError as exc:
            return error(request, 400, "400065", "Bad Request", str(exc))
        rows = [{"id": i, "name": n} for i, n in self.state.read().execute("SELECT id, name FROM projects ORDER BY name")
                if name is None or n == name]
        return self._page(request, rows, "projects", "project")

    def _ds_doc(self, row: tuple) -> dict:
        ds_id, name, project_id, project_name, ds_type, size, created, updated = row
        return {"id": ds_id, "name": name, "type": ds_type, "size": str(size), "createdAt": created,
                "updatedAt": updated, "hasExtracts": "true" if self._has_extract(ds_id, ds_type) else "false",
                "isCertified": "false",
                "contentUrl": re.sub(r"[^A-Za-z0-9_]", "", name), "project": {"id": project_id, "name": project_name},
                "owner": {"id": self.meta["user_id"]}}

    _DS_SELECT = ("SELECT d.id, d.name, d.project_id, p.name, d.type, d.size, d.created_at, d.updated_at "
                  "FROM datasources d JOIN projects p ON p.id = d.project_id")

    async def _datasources(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        if request.method == "POST":
            return await self._publish(request)
        try:
            name = self._name_filter(request)
        except ValueError as exc:
            return error(request, 400, "400065", "Bad Request", str(exc))
        rows = self.state.read().execute(self._DS_SELECT + " ORDER BY d.name, d.id").fetchall()
        docs = [self._ds_doc(r) for r in rows if name is None or r[1] == name]
        return self._page(request, docs, "datasources", "datasource")

    def _find(self, ds_id: str) -> tuple | None:
        return self.state.read().execute(self._DS_SELECT + " WHERE d.id = ?", [ds_id]).fetchone()

    async def _datasource(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        row = self._find(request.path_params["ds"])
        if row is None:
            return error(request, 404, "404011", "Resource Not Found", "Datasource not found")
        return respond(request, {"datasource": self._ds_doc(row)})

    async def _content(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        row = self.state.read().execute("SELECT name, file FROM datasources WHERE id = ?",
                                        [request.path_params["ds"]]).fetchone()
        if row is None:
            return error(request, 404, "404011", "Resource Not Found", "Datasource not found")
        name, file = row
        buffer = io.BytesIO()
        if not file.endswith(".hyper"):
            return self._live_content(request.path_params["ds"], name, file)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"{name}.tds", f"<?xml version='1.0' encoding='utf-8' ?><datasource formatted-name='{name}' "
                                      "version='18.1'><connection class='hyper' dbname='Data/Extracts/"
                                      f"{name}.hyper' /></datasource>")
            z.write(self.files / file, f"Data/Extracts/{name}.hyper")
        return Response(buffer.getvalue(), 200, {"Content-Disposition": f'attachment; filename="{name}.tdsx"'},
                        media_type="application/octet-stream")

    async def _refresh(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        ds_id = request.path_params["ds"]
        if self._find(ds_id) is None:
            return error(request, 404, "404011", "Resource Not Found", "Datasource not found")
        if self._connection(ds_id) is not None:
            if not self._has_extract(ds_id, "tds"):
                return error(request, 409, "409093", "Conflict", "This data source connects live and has no "
                             "extract to refresh; create one first (createExtract).")
            return respond(request, {"job": self._start_job("RefreshExtract", ds_id)}, 202)
        return error(request, 409, "409093", "Conflict",
                     "This data source has no connection to refresh from: it was published from an extract file. "
                     "Publish it again to update its data.")

    # -- uploads and publishing ---------------------------------------------------------------------
    async def _start_upload(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        upload = f"{uuid.uuid4().hex}:{uuid.uuid4().hex[:8]}"
        file = f"upload-{upload.replace(':', '-')}.part"
        (self.files / file).write_bytes(b"")
        with self.state.tx() as con:
            con.execute("INSERT INTO uploads VALUES (?, ?, 0)", [upload, file])
            self.state.bump(con, "uploads_started")
        return respond(request, {"fileUpload": {"uploadSessionId": upload, "fileSize": "0"}}, 201)

    async def _append_upload(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        upload = request.path_params["upload"]
        row = self.state.read().execute("SELECT file FROM uploads WHERE id = ?", [upload]).fetchone()
        if row is None:
            return error(request, 404, "404003", "Upload Session Not Found", f"Upload session {upload} not found")
        body = await request.body()
        if len(body) > self.max_single_request_bytes:
            return error(request, 413, "413000", "Payload Too Large", "A chunk may be at most 64 MB")
        try:
            parts = parse_multipart(request.headers.get("content-type", ""), body)
            chunk = parts["tableau_file"][1]
        except (ValueError, KeyError):
            return error(request, 400, "400000", "Bad Request", "Expected parts request_payload and tableau_file")

        def append() -> int:
            with self.state.tx() as con:
                with (self.files / row[0]).open("ab") as f:
                    f.write(chunk)
                con.execute("UPDATE uploads SET size = size + ? WHERE id = ?", [len(chunk), upload])
                self.state.bump(con, "chunks")
                return con.execute("SELECT size FROM uploads WHERE id = ?", [upload]).fetchone()[0]

        size = await run_in_threadpool(append)
        return respond(request, {"fileUpload": {"uploadSessionId": upload, "fileSize": str(size // (1024 * 1024))}})

    async def _publish(self, request: Request) -> Response:
        q = request.query_params
        ds_type = (q.get("datasourceType") or "").lower()
        overwrite = q.get("overwrite", "false").lower() == "true"
        append = q.get("append", "false").lower() == "true"
        if overwrite and append:
            return error(request, 400, "400011", "Bad Request", "overwrite and append cannot both be true")
        body = await request.body()
        upload = q.get("uploadSessionId")
        if upload is None and len(body) > self.max_single_request_bytes:
            return error(request, 413, "413000", "Payload Too Large",
                         "A publish request may be at most 64 MB; use a file upload session for larger files")
        try:
            parts = parse_multipart(request.headers.get("content-type", ""), body)
            payload = parse_payload(*parts["request_payload"])["tsRequest"]["datasource"]
        except (ValueError, KeyError, TypeError, ET.ParseError) as exc:
            return error(request, 400, "400000", "Bad Request", f"The request payload is not valid: {exc}")
        name = payload.get("name")
        project = (payload.get("project") or {}).get("id")
        if not name:
            return error(request, 400, "400000", "Bad Request", "The datasource name is missing")
        if not self.state.read().execute("SELECT 1 FROM projects WHERE id = ?", [project]).fetchone():
            return error(request, 404, "404005", "Project Not Found", f"Project '{project}' could not be found")
        if upload is not None:
            row = self.state.read().execute("SELECT file FROM uploads WHERE id = ?", [upload]).fetchone()
            if row is None:
                return error(request, 404, "404003", "Upload Session Not Found", f"Upload session {upload} not found")
            data = (self.files / row[0]).read_bytes()
            filename = f"{name}{DATASOURCE_TYPES.get(ds_type, '')}"
        else:
            if "tableau_datasource" not in parts:
                return error(request, 400, "400000", "Bad Request", "The tableau_datasource part is missing")
            headers, data = parts["tableau_datasource"]
            m = re.search(r'filename="([^"]*)"', headers.get("content-disposition", ""))
            filename = m.group(1) if m else ""
        if ds_type not in DATASOURCE_TYPES:
            return error(request, 400, "400000", "Bad Request",
                         f"datasourceType must be one of {', '.join(DATASOURCE_TYPES)}")
        if not filename.lower().endswith(DATASOURCE_TYPES[ds_type]):
            return error(request, 400, "400000", "Bad Request",
                         f"The file '{filename}' does not match datasourceType={ds_type}")
        if ds_type == "hyper" and not data.startswith(b"Hyper"):
            return error(request, 400, "400000", "Bad Request", "The file is not a valid Hyper extract")
        spec: dict | None = None
        creds = payload.get("connectionCredentials") or {}
        if ds_type in ("tds", "tdsx"):
            try:
                spec = tds.parse_tds(data)
            except (ValueError, zipfile.BadZipFile, ET.ParseError) as exc:
                return error(request, 400, "400000", "Bad Request", f"The data source file is not valid: {exc}")
            if creds and (not creds.get("name") or creds.get("password") is None):
                return error(request, 400, "400000", "Bad Request",
                             "connectionCredentials needs name and password")

        def commit() -> tuple[int, str]:
            with self.state.tx() as con:
                existing = con.execute("SELECT id FROM datasources WHERE project_id = ? AND name = ?",
                                       [project, name]).fetchone()
                if existing and not overwrite and not append:
                    return 409, existing[0]
                ds_id = existing[0] if existing else str(uuid.uuid4())
                file = f"{ds_id}{DATASOURCE_TYPES[ds_type]}"
                tmp = self.files / f"{file}.tmp"
                tmp.write_bytes(data)
                tmp.replace(self.files / file)
                now = _now()
                if existing:
                    con.execute("UPDATE datasources SET size = ?, file = ?, updated_at = ?, type = ? WHERE id = ?",
                                [len(data), file, now, ds_type, ds_id])
                    self.state.bump(con, "datasources_overwritten")
                else:
                    con.execute("INSERT INTO datasources VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                [ds_id, project, name, ds_type, len(data), file, now, now])
                    self.state.bump(con, "datasources_created")
                if upload is not None:
                    old = con.execute("SELECT file FROM uploads WHERE id = ?", [upload]).fetchone()
                    con.execute("DELETE FROM uploads WHERE id = ?", [upload])
                    if old:
                        (self.files / old[0]).unlink(missing_ok=True)
                con.execute("DELETE FROM ds_connections WHERE datasource_id = ?", [ds_id])
                old_extract = con.execute("SELECT file FROM extracts WHERE datasource_id = ?", [ds_id]).fetchone()
                con.execute("DELETE FROM extracts WHERE datasource_id = ?", [ds_id])  # a live file replaces it
                if old_extract:
                    (self.files / old_extract[0]).unlink(missing_ok=True)
                if spec is not None:
                    embed = str(creds.get("embed", "false")).lower() == "true"
                    con.execute("INSERT INTO ds_connections VALUES (?, ?, ?, ?, ?)",
                                [ds_id, json.dumps(spec), creds.get("name") or spec["username"],
                                 creds.get("password") if embed else None, int(embed)])
                self.state.bump(con, "publishes")
                return 201, ds_id

        status, ds_id = await run_in_threadpool(commit)
        if status == 409:
            return error(request, 409, "409004", "Resource Conflict",
                         f"A data source named '{name}' already exists in the project")
        if self.publish_delay_s:
            import asyncio

            await asyncio.sleep(self.publish_delay_s)
        return respond(request, {"datasource": self._ds_doc(self._find(ds_id))}, 201)

    # -- live connections, extracts, jobs, refresh tasks ---------------------------------------------------
    # A data source published from a .tds/.tdsx with a postgres connection is live; createExtract and
    # refresh start a job (a backgrounder thread) that really connects to that server with the embedded
    # credentials, reads the table and keeps the rows as the data source's .hyper extract.
    LOOPBACK = ("127.0.0.1", "localhost", "::1")

    def _connection(self, ds_id: str) -> dict | None:
        row = self.state.read().execute("SELECT spec, username, password, embed FROM ds_connections "
                                        "WHERE datasource_id = ?", [ds_id]).fetchone()
        if row is None:
            return None
        return {**json.loads(row[0]), "username": row[1], "password": row[2], "embed": bool(row[3])}

    def _has_extract(self, ds_id: str, ds_type: str) -> bool:
        if ds_type == "hyper":
            return True
        return self.state.read().execute("SELECT 1 FROM extracts WHERE datasource_id = ?", [ds_id]).fetchone() \
            is not None

    def set_embedded_password(self, name: str, password: str) -> None:
        """Tests: what a site admin editing the data source's connection in the web UI does."""
        with self.state.tx() as con:
            con.execute("UPDATE ds_connections SET password = ?, embed = 1 WHERE datasource_id IN "
                        "(SELECT id FROM datasources WHERE name = ?)", [password, name])

    def extract_rows(self, name: str) -> int | None:
        row = self.state.read().execute("SELECT e.rows FROM extracts e JOIN datasources d ON d.id = e.datasource_id "
                                        "WHERE d.name = ?", [name]).fetchone()
        return None if row is None else row[0]

    def tasks(self) -> list[dict]:
        cur = self.state.read().execute("SELECT id, datasource_id, type, schedule FROM tasks ORDER BY created_at")
        return [{"id": i, "datasource_id": d, "type": t, "schedule": json.loads(s)} for i, d, t, s in cur.fetchall()]

    def _job_doc(self, job_id: str) -> dict:
        row = self.state.read().execute("SELECT j.id, j.type, j.datasource_id, j.created_at, j.started_at, "
                                        "j.completed_at, j.finish_code, j.notes, d.name FROM jobs j LEFT JOIN "
                                        "datasources d ON d.id = j.datasource_id WHERE j.id = ?", [job_id]).fetchone()
        jid, jtype, ds_id, created, started, completed, code, notes, name = row
        doc: dict[str, Any] = {"id": jid, "mode": "Asynchronous", "type": jtype, "createdAt": created,
                               "startedAt": started, "completedAt": completed,
                               "progress": "100" if code is not None else ("50" if started else "0"),
                               "extractRefreshJob": {"datasource": {"id": ds_id, "name": name}}}
        if code is not None:
            doc["finishCode"] = str(code)
        if notes:
            doc["extractRefreshJob"]["notes"] = notes
            doc["statusNotes"] = {"statusNote": [{"type": "ErrorInfo", "text": notes}]}
        return doc

    def _start_job(self, job_type: str, ds_id: str) -> dict:
        import threading

        job_id = str(uuid.uuid4())
        with self.state.tx() as con:
            con.execute("INSERT INTO jobs (id, type, datasource_id, created_at) VALUES (?, ?, ?, ?)",
                        [job_id, job_type, ds_id, _now()])
            self.state.bump(con, "extract_jobs")
        threading.Thread(target=self._run_job, args=(job_id, ds_id), name=f"tableau-job-{job_id[:8]}",
                         daemon=True).start()
        return self._job_doc(job_id)

    def _run_job(self, job_id: str, ds_id: str) -> None:
        with self.state.tx() as con:
            con.execute("UPDATE jobs SET started_at = ? WHERE id = ?", [_now(), job_id])
        code, notes = 0, None
        try:
            with self._job_lock:  # one backgrounder
                rows, file = self._extract(ds_id)
            with self.state.tx() as con:
                old = con.execute("SELECT file FROM extracts WHERE datasource_id = ?", [ds_id]).fetchone()
                con.execute("INSERT OR REPLACE INTO extracts VALUES (?, ?, ?, ?)", [ds_id, file, rows, _now()])
                self.state.bump(con, "extracts_refreshed")
            if old and old[0] != file:
                (self.files / old[0]).unlink(missing_ok=True)
        except Exception as exc:  # the job fails with the database's (or Hyper's) own message
            code, notes = 1, f"{type(exc).__name__}: {str(exc).strip()}"
        with self.state.tx() as con:
            con.execute("UPDATE jobs SET completed_at = ?, finish_code = ?, notes = ? WHERE id = ?",
                        [_now(), code, notes, job_id])
            if code:
                self.state.bump(con, "extract_jobs_failed")

    def _extract(self, ds_id: str) -> tuple[int, str]:
        import psycopg2

        from finance_pipeline.platforms.tableau import hyper

        conn = self._connection(ds_id)
        if conn is None:
            raise RuntimeError("the data source has no database connection")
        if conn["server"] not in self.LOOPBACK:
            raise RuntimeError(f"the sandbox connects to loopback servers only, not {conn['server']!r}")
        if conn["password"] is None:
            raise RuntimeError("no credentials are embedded in the data source: the refresh cannot sign in to "
                               "the database")
        pg = psycopg2.connect(host=conn["server"], port=conn["port"], dbname=conn["dbname"], user=conn["username"],
                              password=conn["password"], sslmode=conn["sslmode"], connect_timeout=10)
        try:
            pg.set_session(readonly=True)
            table = tds.pg_table(pg, conn["schema"], conn["table"])
        finally:
            pg.close()
        file = f"{ds_id}-extract-{uuid.uuid4().hex[:8]}.hyper"
        with hyper.hyper_process(self.files / "hyper-logs") as process:
            built = hyper.build(process, table, self.files / file)
        if built.refused:
            (self.files / file).unlink(missing_ok=True)
            raise RuntimeError(f"{len(built.refused)} rows could not be written to the extract: "
                               f"{built.refused[0][2]}")
        return built.rows, file

    def _live_content(self, ds_id: str, name: str, file: str) -> Response:
        buffer = io.BytesIO()
        extract = self.state.read().execute("SELECT file FROM extracts WHERE datasource_id = ?", [ds_id]).fetchone()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(f"{name}.tds", tds.read_tds((self.files / file).read_bytes()))
            if extract:
                z.write(self.files / extract[0], f"Data/Extracts/{name}.hyper")
        return Response(buffer.getvalue(), 200, {"Content-Disposition": f'attachment; filename="{name}.tdsx"'},
                        media_type="application/octet-stream")

    async def _create_extract(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        ds_id = request.path_params["ds"]
        row = self._find(ds_id)
        if row is None:
            return error(request, 404, "404011", "Resource Not Found", "Datasource not found")
        if self._connection(ds_id) is None:
            return error(request, 409, "409093", "Conflict", "This data source has no database connection to "
                                                             "create an extract from")
        if self._has_extract(ds_id, row[4]):
            return error(request, 409, "409094", "Conflict", "The data source already has an extract; refresh it")
        return respond(request, {"job": self._start_job("CreateExtract", ds_id)}, 202)

    async def _job(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        job_id = request.path_params["job"]
        if not self.state.read().execute("SELECT 1 FROM jobs WHERE id = ?", [job_id]).fetchone():
            return error(request, 404, "404031", "Resource Not Found", f"Job {job_id} not found")
        return respond(request, {"job": self._job_doc(job_id)})

    FREQUENCIES = ("Hourly", "Daily", "Weekly", "Monthly")
    WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")

    def _parse_schedule(self, schedule: dict) -> dict:
        frequency = schedule.get("frequency")
        if frequency not in self.FREQUENCIES:
            raise ValueError(f"schedule frequency must be one of {', '.join(self.FREQUENCIES)}")
        details = schedule.get("frequencyDetails") or {}
        start = details.get("start") or ""
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d:00", start):
            raise ValueError(f"frequencyDetails start {start!r} must be HH:MM:00")
        raw = (details.get("intervals") or {}).get("interval") or []
        intervals = raw if isinstance(raw, list) else [raw]
        for item in intervals:
            if "weekDay" in item and item["weekDay"] not in self.WEEKDAYS:
                raise ValueError(f"interval weekDay {item['weekDay']!r} is not a day of the week")
            if "hours" in item and item["hours"] not in ("1", "2", "4", "6", "8", "12", "24"):
                raise ValueError(f"interval hours {item['hours']!r} must be 1, 2, 4, 6, 8, 12 or 24")
        if frequency == "Daily" and not any("hours" in i for i in intervals):
            raise ValueError("a Daily schedule needs an interval with hours")
        return {"frequency": frequency, "start": start, "intervals": intervals}

    def _task_doc(self, row: tuple) -> dict:
        task_id, ds_id, task_type, schedule = row
        sched = json.loads(schedule)
        return {"id": task_id, "type": task_type, "priority": "50", "consecutiveFailedCount": "0",
                "datasource": {"id": ds_id},
                "schedule": {"frequency": sched["frequency"],
                             "frequencyDetails": {"start": sched["start"],
                                                  "intervals": {"interval": sched["intervals"]}}}}

    async def _read_task_request(self, request: Request) -> tuple[dict, dict]:
        payload = parse_payload({"content-type": request.headers.get("content-type", "")}, await request.body())
        ts = payload["tsRequest"]
        return ts.get("extractRefresh") or {}, self._parse_schedule(ts.get("schedule") or {})

    async def _tasks(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        if request.method == "GET":
            rows = self.state.read().execute("SELECT id, datasource_id, type, schedule FROM tasks "
                                             "ORDER BY created_at").fetchall()
            return respond(request, {"tasks": {"task": [{"extractRefresh": self._task_doc(r)} for r in rows]}})
        try:
            refresh, schedule = await self._read_task_request(request)
        except (ValueError, KeyError, TypeError, ET.ParseError) as exc:
            return error(request, 400, "400000", "Bad Request", f"The extract refresh task is not valid: {exc}")
        ds_id = (refresh.get("datasource") or {}).get("id")
        task_type = refresh.get("type") or "FullRefresh"
        if task_type not in ("FullRefresh", "IncrementalRefresh"):
            return error(request, 400, "400000", "Bad Request", "extractRefresh type must be FullRefresh or "
                                                                "IncrementalRefresh")
        if not ds_id or self._find(ds_id) is None:
            return error(request, 404, "404011", "Resource Not Found", "Datasource not found")
        task_id, now = str(uuid.uuid4()), _now()
        with self.state.tx() as con:
            con.execute("INSERT INTO tasks VALUES (?, ?, ?, ?, ?, ?)",
                        [task_id, ds_id, task_type, json.dumps(schedule), now, now])
            self.state.bump(con, "tasks_created")
        doc = self._task_doc((task_id, ds_id, task_type, json.dumps(schedule)))
        return respond(request, {"extractRefresh": {k: v for k, v in doc.items() if k != "schedule"},
                                 "schedule": doc["schedule"]}, 201)

    async def _task(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        task_id = request.path_params["task"]
        row = self.state.read().execute("SELECT id, datasource_id, type, schedule FROM tasks WHERE id = ?",
                                        [task_id]).fetchone()
        if row is None:
            return error(request, 404, "404036", "Resource Not Found", f"Task {task_id} not found")
        if request.method == "GET":
            return respond(request, {"task": {"extractRefresh": self._task_doc(row)}})
        if request.method == "DELETE":
            with self.state.tx() as con:
                con.execute("DELETE FROM tasks WHERE id = ?", [task_id])
            return Response(status_code=204)
        try:
            refresh, schedule = await self._read_task_request(request)
        except (ValueError, KeyError, TypeError, ET.ParseError) as exc:
            return error(request, 400, "400000", "Bad Request", f"The extract refresh task is not valid: {exc}")
        with self.state.tx() as con:
            con.execute("UPDATE tasks SET schedule = ?, type = ?, updated_at = ? WHERE id = ?",
                        [json.dumps(schedule), refresh.get("type") or row[2], _now(), task_id])
            self.state.bump(con, "tasks_updated")
        row = self.state.read().execute("SELECT id, datasource_id, type, schedule FROM tasks WHERE id = ?",
                                        [task_id]).fetchone()
        doc = self._task_doc(row)
        return respond(request, {"extractRefresh": {k: v for k, v in doc.items() if k != "schedule"},
                                 "schedule": doc["schedule"]})

    async def _run_task(self, request: Request) -> Response:
        if (denied := self._authorise(request)) is not None:
            return denied
        row = self.state.read().execute("SELECT datasource_id FROM tasks WHERE id = ?",
                                        [request.path_params["task"]]).fetchone()
        if row is None:
            return error(request, 404, "404036", "Resource Not Found", "Task not found")
        if not self._has_extract(row[0], "tds"):
            return error(request, 409, "409093", "Conflict", "The data source has no extract to refresh")
        return respond(request, {"job": self._start_job("RefreshExtract", row[0])}, 202)
