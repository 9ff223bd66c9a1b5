"""The marts to Tableau: one `.hyper` extract per mart, published as a data source, overwritten in place.

A run (holding the PAT lock: one session per personal access token, never parallel sign-ins):

1. signs in, finds the project (`TABLEAU_PROJECT`, default "Finance") and the data sources already
   in it (one paged listing);
2. for each mart whose content hash differs from the ledger's, or whose data source is missing or
   has another id: builds the `.hyper` with the Hyper API (rows Hyper refuses are quarantined with
   its message, the rest are written), marks the data source pending, publishes it with
   `overwrite=true` — one multipart/mixed request up to `chunk_threshold` (64 MB), above it an
   upload session with chunks (`chunk_size`, 50 MB as Tableau's own client uses) and a commit —
   then marks it done with the data source's id.  `overwrite=true` replaces the data source of
   that name in the project (same id), so a publish repeated after a crash or a timeout can never
   make a second one; a chunked upload whose answer was lost starts a new upload session rather
   than append a chunk twice;
3. reads back: downloads each data source (`/content`, a `.tdsx`), opens its extract with the
   Hyper API and compares the row count and the sum of every money column with the marts.

A published `.hyper` has no upstream connection, so Tableau's "refresh extract" cannot re-pull it
(the emulator refuses it as the server does); it is kept current by re-publishing.  With the
warehouse on Postgres (FINANCE_WAREHOUSE=postgres) `publish_marts` instead publishes data sources
connected live to it, has Tableau create and refresh their extracts and keeps a refresh task per
data source (live.py).
"""
from __future__ import annotations

import io
import logging
import shutil
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any, Sequence

import duckdb

from finance_pipeline.http import ApiClient, ApiError
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.tableau import hyper
from finance_pipeline.platforms.tableau.client import (TableauAuth, make_client, pat_session, project_datasources,
                                                     project_site)
from finance_pipeline.publish.bi import MartTable, load_marts, record_row_rejections, refused_keys
from finance_pipeline.publish.destinations import DryRun, quarantine_rejections
from finance_pipeline.publish.ledger import PublishLedger
from finance_pipeline.publish.mechanics import ItemError, Mismatch, PublishResult
from finance_pipeline.settings import Settings, SettingsError, env
from finance_pipeline.warehouse import WarehouseTarget, open_warehouse

log = logging.getLogger("finance_pipeline.tableau.publish")

DESTINATION = "tableau"
CHUNK_THRESHOLD = 64 * 1024 * 1024  # Tableau's single-request limit
CHUNK_SIZE = 50 * 1024 * 1024
PUBLISH_ATTEMPTS = 3


def multipart(parts: Sequence[tuple[str, str | None, str, bytes]]) -> tuple[bytes, str]:
    """multipart/mixed body from (name, filename or None, content type, content)."""
    boundary = uuid.uuid4().hex
    out = io.BytesIO()
    for name, filename, content_type, content in parts:
        disposition = f'name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out.write(f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {content_type}\r\n\r\n"
                  .encode())
        out.write(content)
        out.write(b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/mixed; boundary={boundary}"


def request_payload(name: str, project_id: str) -> bytes:
    from xml.sax.saxutils import quoteattr

    return (f"<tsRequest><datasource name={quoteattr(name)}><project id={quoteattr(project_id)}/>"
            f"</datasource></tsRequest>").encode()


class UploadLost(RuntimeError):
    """A chunk's answer was lost; the upload session may hold it twice — start a new one."""


class _Run:
    def __init__(self, client: ApiClient, auth: TableauAuth, ledger: PublishLedger | None, result: PublishResult,
                 project: str, work: Path, chunk_threshold: int, chunk_size: int) -> None:
        self.client = client
        self.auth = auth
        self.ledger = ledger
        self.result = result
        self.project_name = project
        self.work = work
        self.chunk_threshold = chunk_threshold
        self.chunk_size = chunk_size
        self.rejected: list[tuple[str, str, Any, str]] = []
        self.site = ""
        self.project_id = ""

    def start(self) -> None:
        self.site, self.project_id = project_site(self.client, self.auth, self.project_name)

    def existing(self) -> dict[str, list[dict]]:
        return project_datasources(self.client, self.site, self.project_id)

    # -- publishing -----------------------------------------------------------------------------------
    def _publish_single(self, name: str, path: Path) -> dict:
        body, content_type = multipart([
            ("request_payload", None, "text/xml", request_payload(name, self.project_id)),
            ("tableau_datasource", f"{name}.hyper", "application/octet-stream", path.read_bytes())])
        return self.client.request("POST", f"{self.site}/datasources",
                                   params={"datasourceType": "hyper", "overwrite": "true"}, content=body,
                                   headers={"Content-Type": content_type}, idempotent=True).json()

    def _publish_chunked(self, name: str, path: Path) -> dict:
        upload = self.client.request("POST", f"{self.site}/fileUploads", idempotent=True
                                     ).json()["fileUpload"]["uploadSessionId"]
        with path.open("rb") as f:
            while chunk := f.read(self.chunk_size):
                body, content_type = multipart([("request_payload", None, "text/xml", b""),
                                                ("tableau_file", "file", "application/octet-stream", chunk)])
                try:  # never replayed blindly: a lost answer may hide an appended chunk
                    self.client.request("PUT", f"{self.site}/fileUploads/{upload}", content=body,
                                        headers={"Content-Type": content_type}, idempotent=False)
                except ApiError as exc:
                    if exc.status is not None and exc.status < 500 and exc.status != 429:
                        raise
                    raise UploadLost(str(exc)) from exc
                self.result.of("chunk").created += 1
        body, content_type = multipart([("request_payload", None, "text/xml",
                                         request_payload(name, self.project_id))])
        return self.client.request("POST", f"{self.site}/datasources",
                                   params={"uploadSessionId": upload, "datasourceType": "hyper", "overwrite": "true"},
                                   content=body, headers={"Content-Type": content_type}, idempotent=True).json()

    def publish_file(self, name: str, path: Path) -> str:
        last: Exception | None = None
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                if path.stat().st_size > self.chunk_threshold:
                    return self._publish_chunked(name, path)["datasource"]["id"]
                return self._publish_single(name, path)["datasource"]["id"]
            except UploadLost as exc:
                last = exc
                log.warning("tableau %s: upload attempt %d lost a chunk's answer; starting a new upload session",
                            name, attempt)
        raise RuntimeError(f"tableau {name}: upload failed {PUBLISH_ATTEMPTS} times: {last}")

    def publish(self, process: Any, tables: Sequence[MartTable]) -> None:
        assert self.ledger is not None
        counts = self.result.of("datasource")
        remote = self.existing()
        entries = self.ledger.entries("datasource")
        for table in tables:
            digest = table.content_hash()
            found = remote.get(table.name, [])
            entry = entries.get(table.name)
            if len(found) > 1:
                self.result.mismatches.append(Mismatch(table.name, "datasources", 1, len(found)))
            if (entry is not None and entry.status == "done" and entry.content_hash == digest and found
                    and entry.remote_id == found[0]["id"]):
                counts.unchanged += 1
                continue
            if entry is not None and entry.status == "pending":
                counts.recovered += 1
            built = hyper.build(process, table, self.work / f"{table.name}.hyper")
            self.ledger.mark_pending("datasource", table.name, digest, remote_id=found[0]["id"] if found else None)
            try:
                ds_id = self.publish_file(table.name, built.path)
            except (ApiError, RuntimeError) as exc:
                if isinstance(exc, ApiError) and exc.status in (401, 403):
                    raise
                if isinstance(exc, ApiError) and exc.status is not None and 400 <= exc.status < 500 \
                        and exc.status != 429:
                    self.ledger.mark_failed("datasource", table.name, digest, str(exc))
                    counts.failed += 1
                else:
                    counts.unresolved += 1
                self.result.errors.append(ItemError("datasource", table.name, str(exc)))
                continue
            self.rejected += record_row_rejections(self.ledger, self.result, "Tableau (Hyper)", table.name,
                                                   built.refused)
            self.ledger.mark_done("datasource", table.name, digest, ds_id,
                                  detail=f"{built.rows} rows, {built.path.stat().st_size} bytes")
            counts.bump("update" if found else "create")
            self.result.of("row").created += built.rows

    # -- read-back ----------------------------------------------------------------------------------------
    def read_back(self, process: Any, tables: Sequence[MartTable], refused: set[str]) -> None:
        remote = self.existing()
        for table in tables:
            found = remote.get(table.name, [])
            if len(found) != 1:
                self.result.mismatches.append(Mismatch(table.name, "datasources", 1, len(found)))
                if not found:
                    continue
            raw = self.client.request("GET", f"{self.site}/datasources/{found[0]['id']}/content",
                                      expect_json=False).content
            path = self.work / f"readback-{table.name}.hyper"
            path.write_bytes(_extract_hyper(raw))
            got = hyper.summarise(process, path, [c.name for c in table.money_columns()])
            self.result.read_back += got["rows"]
            if got["columns"] != [c.name for c in table.columns]:
                self.result.mismatches.append(Mismatch(table.name, "columns", [c.name for c in table.columns],
                                                       got["columns"]))
            for field, want in table.expected(refused).items():
                if got.get(field) != want:
                    self.result.mismatches.append(Mismatch(table.name, field, want, got.get(field)))


def _extract_hyper(raw: bytes) -> bytes:
    """The extract inside a downloaded `.tdsx` (or the bytes themselves if they are a `.hyper`)."""
    if raw.startswith(b"Hyper"):
        return raw
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        names = [n for n in z.namelist() if n.lower().endswith(".hyper")]
        if len(names) != 1:
            raise ValueError(f"the downloaded data source holds {len(names)} extracts")
        return z.read(names[0])


def _dry_run(con: duckdb.DuckDBPyConnection, tables: Sequence[MartTable], threshold: int) -> DryRun:
    plan = DryRun(DESTINATION)
    has_ledger = con.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'ops' "
                             "AND table_name = 'publish_ledger'").fetchone()[0]
    entries = PublishLedger(con, DESTINATION).entries("datasource") if has_ledger else {}
    for table in tables:
        entry = entries.get(table.name)
        if entry is not None and entry.status == "done" and entry.content_hash == table.content_hash():
            continue
        plan.add("datasource", "publish .hyper (overwrite=true)", table.name,
                 {"columns": [f"{c.name} {c.sql_type}" for c in table.columns], "rows": len(table.rows)},
                 chunked_above_bytes=threshold)
    return plan


def publish_marts(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget | None, *,
                  dry_run: bool | None = None, chunk_threshold: int | None = None,
                  chunk_size: int | None = None, read_back: bool = True, marts: Sequence[str] | None = None
                  ) -> PublishResult:
    """Publish every available mart as a Tableau data source; read back; compare (see module doc).

    `chunk_threshold` / `chunk_size` default to `TABLEAU_CHUNK_THRESHOLD_BYTES` (64 MB, Tableau's
    single-request limit) and `TABLEAU_CHUNK_SIZE_BYTES` (50 MB)."""
    if settings.warehouse == "postgres":  # data sources connected live to the warehouse (live.py)
        from finance_pipeline.platforms.tableau.live import publish_live

        return publish_live(settings, connection, read_back=read_back, marts=marts,
                            dry_run=settings.publish_dry_run if dry_run is None else dry_run)
    started = time.monotonic()
    chunk_threshold = chunk_threshold or _bytes_setting("TABLEAU_CHUNK_THRESHOLD_BYTES", CHUNK_THRESHOLD)
    chunk_size = chunk_size or _bytes_setting("TABLEAU_CHUNK_SIZE_BYTES", CHUNK_SIZE)
    dry_run = settings.publish_dry_run if dry_run is None else dry_run
    con = open_warehouse(warehouse_path, read_only=dry_run)
    result = PublishResult(DESTINATION, "dry-run", primary="datasource")
    run: _Run | None = None
    work = Path(tempfile.mkdtemp(prefix="tableau-", dir=_work_dir(settings)))
    client = None
    try:
        tables = load_marts(con, marts) if marts else load_marts(con)
        if dry_run:
            plan = _dry_run(con, tables, chunk_threshold)
            result.dry_run = {**plan.summary(), "saved_to": plan.save(settings)}
            return result
        for kind in ("datasource", "row", "chunk"):
            result.of(kind)
        with pat_session(settings):  # the whole run: one PAT session at a time (and one ledger writer)
            ledger = PublishLedger(con, DESTINATION).ensure_schema()
            result.run_id = ledger.run_id
            auth = TableauAuth(connection)
            client = make_client(connection, auth=auth)
            try:
                run = _Run(client, auth, ledger, result, connection.get("project") or "Finance", work,
                           chunk_threshold, chunk_size)
                run.start()
                with hyper.hyper_process(work / "logs") as process:
                    run.publish(process, tables)
                    if read_back:
                        run.read_back(process, tables, refused_keys(ledger))
            finally:
                result.requests = client.stats["requests"]
                client.close()
                auth.close()
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
        result.seconds = time.monotonic() - started
    if run is not None and run.rejected:
        result.quarantined = quarantine_rejections(settings, DESTINATION, run.rejected)
    d = result.of("datasource")
    log.info("tableau publish: data sources created %d, overwritten %d, unchanged %d, failed %d, unresolved %d, "
             "recovered %d; %d rows, %d refused; %d rows read back, %d mismatches, %d requests, %.1f s",
             d.created, d.updated, d.unchanged, d.failed, d.unresolved, d.recovered, result.of("row").created,
             result.of("row").failed, result.read_back, len(result.mismatches), result.requests, result.seconds)
    return result


def check_read_back(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget | None) -> PublishResult:
    """Only the read-back (the asset check); nothing is published."""
    if settings.warehouse == "postgres":
        from finance_pipeline.platforms.tableau.live import publish_live

        return publish_live(settings, connection, check_only=True)
    result = PublishResult(DESTINATION, "read-back", primary="datasource")
    con = open_warehouse(warehouse_path, read_only=True)
    work = Path(tempfile.mkdtemp(prefix="tableau-check-", dir=_work_dir(settings)))
    try:
        tables = load_marts(con)
        refused = refused_keys(PublishLedger(con, DESTINATION))
        with pat_session(settings):
            auth = TableauAuth(connection)
            client = make_client(connection, auth=auth)
            try:
                run = _Run(client, auth, None, result, connection.get("project") or "Finance", work, CHUNK_THRESHOLD,
                           CHUNK_SIZE)
                run.start()
                with hyper.hyper_process(work / "logs") as process:
                    run.read_back(process, tables, refused)
            finally:
                client.close()
                auth.close()
    finally:
        con.close()
        shutil.rmtree(work, ignore_errors=True)
    return result


def _bytes_setting(name: str, default: int) -> int:
    raw = env(name) or str(default)
    if not raw.isdigit() or not 1024 <= int(raw) <= CHUNK_THRESHOLD:
        raise SettingsError(f"{name}={raw!r}: a number of bytes from 1024 to {CHUNK_THRESHOLD} (64 MB)")
    return int(raw)


def _work_dir(settings: Settings) -> str:
    path = settings.data_dir / "publish" / "tableau"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def main(argv: list[str] | None = None) -> int:
    from finance_pipeline.publish.destinations import run_cli

    return run_cli(DESTINATION, publish_marts, argv, "Publish the marts to Tableau as .hyper data sources (on a "
                   "Postgres warehouse: data sources connected live to it, with extracts).")


if __name__ == "__main__":
    import sys

    sys.exit(main())
