"""The marts to Tableau as data sources connected live to the Postgres warehouse, with an extract
Tableau keeps fresh itself (FINANCE_WAREHOUSE=postgres; on DuckDB the `.hyper` path of publish.py runs).

A run (holding the PAT lock, as the `.hyper` path does) does for each mart in `marts` on the server:

1. publishes a `.tds` whose connection is class `postgres` to the warehouse (server, port, dbname,
   schema `marts`, the mart's table, the role's name) with `datasourceType=tds&overwrite=true`; the
   role's password rides only in the publish request's `<connectionCredentials embed="true">` and
   Tableau keeps it, so the file — and what anyone downloads from Tableau — never holds it.
   `overwrite=true` replaces the data source of that name in the project (same id): never a second.
   A data source already there, published from the same `.tds` with the same credentials
   (fingerprint in `<data>/secrets/tableau_live.json`) and holding an extract, is not re-published;
2. asks Tableau for the data: `POST …/datasources/{id}/createExtract` when it has no extract yet
   (just published: a live file replaces the extract), else `POST …/datasources/{id}/refresh`; both
   answer with a job, polled on `GET …/jobs/{id}` until it finishes. A failed job (the database
   refused the password, the table is gone …) is reported with Tableau's message for that mart and
   the run goes on with the next mart; the fingerprint is dropped so the next run re-publishes;
3. keeps an extract refresh task for unattended refreshes: the Tableau Cloud "Create Cloud Extract
   Refresh Task" (`POST …/tasks/extractRefreshes`, REST API 3.20+), one per data source, Daily at
   `TABLEAU_REFRESH_AT` (default 06:00) every day; a task whose schedule differs is updated in place
   (`POST …/tasks/extractRefreshes/{task-id}`), none is ever duplicated;
4. reads back: downloads each data source (a `.tdsx` holding its extract), opens the extract with
   the Hyper API and compares row count and the sum of every money column with the mart on Postgres.

Each data source published is also recorded in the warehouse's `ops.publish_ledger` (object type
`datasource`, the hash of its `.tds`, Tableau's id; a failed extract as failed), as every destination
is; the state file above, not the ledger, decides what is re-published.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import quoteattr

from finance_pipeline.http import ApiClient, ApiError
from finance_pipeline.http.redaction import register_secret
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.tableau import hyper, tds
from finance_pipeline.platforms.tableau.client import (TableauAuth, make_client, pat_session, project_datasources,
                                                     project_site)
from finance_pipeline.publish.bi import BI_MARTS, available_marts, load_table
from finance_pipeline.publish.destinations import DryRun
from finance_pipeline.publish.ledger import PublishLedger
from finance_pipeline.publish.mechanics import ItemError, Mismatch, PublishResult
from finance_pipeline.settings import PostgresSettings, Settings, SettingsError, env
from finance_pipeline.sandbox.store import atomic_write
from finance_pipeline.warehouse import open_warehouse

log = logging.getLogger("finance_pipeline.tableau.live")

DESTINATION = "tableau"
SCHEMA = "marts"
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
JOB_TIMEOUT_S = 3600.0


class JobFailed(RuntimeError):
    pass


def refresh_schedule() -> dict[str, Any] | None:
    """The refresh task's schedule from TABLEAU_REFRESH_AT (HH:MM, default 06:00): Daily, every day.
    `off`: no task is kept (Tableau Server, where an admin adds the data sources to a server schedule)."""
    raw = (env("TABLEAU_REFRESH_AT") or "06:00").strip()
    if raw.lower() == "off":
        return None
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", raw):
        raise SettingsError(f"TABLEAU_REFRESH_AT={raw!r}: the daily extract refresh time as HH:MM (24-hour), "
                            "e.g. 06:00, or off for no refresh task")
    return {"frequency": "Daily", "start": f"{raw}:00",
            "intervals": [{"hours": "24"}] + [{"weekDay": d} for d in WEEKDAYS]}


def schedule_xml(schedule: dict[str, Any]) -> str:
    intervals = "".join("<interval " + " ".join(f"{k}={quoteattr(v)}" for k, v in i.items()) + "/>"
                        for i in schedule["intervals"])
    return (f"<schedule frequency={quoteattr(schedule['frequency'])}><frequencyDetails "
            f"start={quoteattr(schedule['start'])}><intervals>{intervals}</intervals></frequencyDetails></schedule>")


def _same_schedule(remote: dict, want: dict) -> bool:
    details = remote.get("frequencyDetails") or {}
    raw = (details.get("intervals") or {}).get("interval") or []
    got = raw if isinstance(raw, list) else [raw]
    key = lambda items: sorted(json.dumps(i, sort_keys=True) for i in items)  # noqa: E731
    return (remote.get("frequency") == want["frequency"] and details.get("start") == want["start"]
            and key(got) == key(want["intervals"]))


def publish_payload(name: str, project_id: str, username: str, password: str) -> bytes:
    return (f"<tsRequest><datasource name={quoteattr(name)}><connectionCredentials name={quoteattr(username)} "
            f"password={quoteattr(password)} embed=\"true\"/><project id={quoteattr(project_id)}/></datasource>"
            "</tsRequest>").encode()


class _State:
    """What this pipeline last published per mart: data source id and a fingerprint of .tds + credentials
    (a SHA-256 of them, in the 0600 secrets directory: the password itself is never stored)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, dict] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            self.data = {}

    def save(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps(self.data, indent=1, sort_keys=True).encode(), mode=0o600)


def fingerprint(tds_bytes: bytes, username: str, password: str, project_id: str) -> str:
    inner = hashlib.sha256(f"{project_id}\0{username}\0{password}".encode()).hexdigest()
    return hashlib.sha256(tds_bytes + b"\0" + inner.encode()).hexdigest()


def warehouse_marts(pg: PostgresSettings, wanted: Sequence[str] = BI_MARTS) -> list[str]:
    con = open_warehouse(pg, read_only=True)
    try:
        return available_marts(con, wanted)
    finally:
        con.close()


class _LiveRun:
    def __init__(self, settings: Settings, client: ApiClient, auth: TableauAuth, result: PublishResult,
                 project: str, work: Path, poll_s: float, ledger: PublishLedger | None = None) -> None:
        assert settings.postgres is not None
        self.settings = settings
        self.pg = settings.postgres
        self.client = client
        self.auth = auth
        self.result = result
        self.project_name = project
        self.work = work
        self.poll_s = poll_s
        self.site = ""
        self.project_id = ""
        self.state = _State(settings.secrets_dir / "tableau_live.json")
        self.schedule = refresh_schedule()
        self.ledger = ledger

    def start(self) -> None:
        self.site, self.project_id = project_site(self.client, self.auth, self.project_name)

    def existing(self) -> dict[str, list[dict]]:
        return project_datasources(self.client, self.site, self.project_id)

    def tds_for(self, mart: str) -> bytes:
        return tds.build_tds(mart, server=self.pg.host, port=self.pg.port, dbname=self.pg.database, schema=SCHEMA,
                             table=mart, username=self.pg.user, sslmode=self.pg.sslmode)

    def _publish(self, mart: str, tds_bytes: bytes) -> dict:
        from finance_pipeline.platforms.tableau.publish import multipart

        payload = publish_payload(mart, self.project_id, self.pg.user, self.pg.password.value)
        body, content_type = multipart([("request_payload", None, "text/xml", payload),
                                        ("tableau_datasource", f"{mart}.tds", "application/octet-stream", tds_bytes)])
        return self.client.request("POST", f"{self.site}/datasources",
                                   params={"datasourceType": "tds", "overwrite": "true"}, content=body,
                                   headers={"Content-Type": content_type}, idempotent=True).json()["datasource"]

    def _wait(self, job: dict, mart: str) -> dict:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while job.get("finishCode") in (None, ""):
            if time.monotonic() > deadline:
                raise JobFailed(f"job {job['id']} did not finish within {JOB_TIMEOUT_S:.0f} s")
            time.sleep(self.poll_s)
            job = self.client.get_json(f"{self.site}/jobs/{job['id']}")["job"]
        if str(job["finishCode"]) != "0":
            notes = (job.get("extractRefreshJob") or {}).get("notes") or ""
            if not notes:
                status = ((job.get("statusNotes") or {}).get("statusNote") or [{}])
                notes = (status[0] if isinstance(status, list) else status).get("text", "")
            word = "cancelled" if str(job["finishCode"]) == "2" else "failed"
            raise JobFailed(f"{job.get('type', 'extract')} job {word} for {mart}: {notes or 'no message'}")
        return job

    def _tasks(self) -> dict[str, list[dict]]:
        body = self.client.get_json(f"{self.site}/tasks/extractRefreshes")
        out: dict[str, list[dict]] = {}
        for task in (body.get("tasks") or {}).get("task") or []:
            refresh = task.get("extractRefresh") or {}
            ds = (refresh.get("datasource") or {}).get("id")
            if ds:
                out.setdefault(ds, []).append(refresh)
        return out

    def ensure_task(self, ds_id: str, mart: str, tasks: dict[str, list[dict]]) -> None:
        counts = self.result.of("refresh_task")
        if self.schedule is None:
            counts.skipped += 1
            return
        found = tasks.get(ds_id, [])
        if len(found) > 1:
            self.result.mismatches.append(Mismatch(mart, "refresh_tasks", 1, len(found)))
        body = (f"<tsRequest><extractRefresh type=\"FullRefresh\"><datasource id={quoteattr(ds_id)}/>"
                f"</extractRefresh>{schedule_xml(self.schedule)}</tsRequest>").encode()
        headers = {"Content-Type": "text/xml"}
        if not found:
            # not replayed blindly: a lost answer could hide a created task (the next run finds it)
            self.client.request("POST", f"{self.site}/tasks/extractRefreshes", content=body, headers=headers,
                                idempotent=False)
            counts.created += 1
        elif not _same_schedule(found[0].get("schedule") or {}, self.schedule):
            self.client.request("POST", f"{self.site}/tasks/extractRefreshes/{found[0]['id']}", content=body,
                                headers=headers, idempotent=True)
            counts.updated += 1
        else:
            counts.unchanged += 1

    def publish(self, marts: Sequence[str]) -> dict[str, str]:
        counts, extracts = self.result.of("datasource"), self.result.of("extract")
        remote = self.existing()
        tasks = self._tasks()
        published: dict[str, str] = {}
        for mart in marts:
            found = remote.get(mart, [])
            if len(found) > 1:
                self.result.mismatches.append(Mismatch(mart, "datasources", 1, len(found)))
            tds_bytes = self.tds_for(mart)
            digest = fingerprint(tds_bytes, self.pg.user, self.pg.password.value, self.project_id)
            known = self.state.data.get(mart) or {}
            try:
                if (found and known.get("id") == found[0]["id"] and known.get("digest") == digest
                        and str(found[0].get("hasExtracts")).lower() == "true"):
                    ds_id = found[0]["id"]
                    counts.unchanged += 1
                else:
                    self.state.data.pop(mart, None)
                    ds = self._publish(mart, tds_bytes)
                    ds_id = ds["id"]
                    counts.bump("update" if found else "create")
                    found = [ds]
                published[mart] = ds_id
                if str(found[0].get("hasExtracts")).lower() == "true":
                    job = self.client.request("POST", f"{self.site}/datasources/{ds_id}/refresh",
                                              content=b"<tsRequest/>", headers={"Content-Type": "text/xml"},
                                              idempotent=True).json()["job"]
                    kind = "updated"
                else:
                    try:
                        job = self.client.request("POST", f"{self.site}/datasources/{ds_id}/createExtract",
                                                  params={"encrypt": "false"}, idempotent=True).json()["job"]
                        kind = "created"
                    except ApiError as exc:
                        if exc.status != 409:
                            raise
                        # a replayed request whose first answer was lost: the extract exists, refresh it
                        job = self.client.request("POST", f"{self.site}/datasources/{ds_id}/refresh",
                                                  content=b"<tsRequest/>", headers={"Content-Type": "text/xml"},
                                                  idempotent=True).json()["job"]
                        kind = "updated"
                self._wait(job, mart)
                setattr(extracts, kind, getattr(extracts, kind) + 1)
                self.state.data[mart] = {"id": ds_id, "digest": digest}
                self._record(mart, tds_bytes, ds_id)
            except (ApiError, JobFailed, KeyError) as exc:
                if isinstance(exc, ApiError) and exc.status in (401, 403):
                    raise
                self.state.data.pop(mart, None)  # the next run publishes it again
                extracts.failed += 1
                if self.ledger is not None:
                    self.ledger.mark_failed("datasource", mart, _tds_hash(tds_bytes), str(exc),
                                            remote_id=published.get(mart))
                self.result.errors.append(ItemError("extract", mart, str(exc)))
                log.error("tableau %s: %s", mart, exc)
            finally:
                self.state.save()
            if mart in published:  # the task refreshes even an extract whose job failed today
                try:
                    self.ensure_task(published[mart], mart, tasks)
                except ApiError as exc:
                    if exc.status in (401, 403):
                        raise
                    self.result.of("refresh_task").failed += 1
                    self.result.errors.append(ItemError("refresh_task", mart, str(exc)))
        return published

    def _record(self, mart: str, tds_bytes: bytes, ds_id: str) -> None:
        """The data source in ops.publish_ledger (its .tds without the password, its Tableau id), written
        only when that changed: an audit record of what Tableau holds, beside the state file that decides
        what to re-publish (whose fingerprint covers the password, so it stays under the secrets dir)."""
        if self.ledger is None:
            return
        digest, known = _tds_hash(tds_bytes), self.ledger.entry("datasource", mart)
        if known is None or known.status != "done" or known.content_hash != digest or known.remote_id != ds_id:
            self.ledger.mark_done("datasource", mart, digest, ds_id, detail="live data source with its extract")

    def read_back(self, process: Any, marts: Sequence[str]) -> None:
        remote = self.existing()
        con = open_warehouse(self.pg, read_only=True)
        try:
            for mart in marts:
                found = remote.get(mart, [])
                if len(found) != 1:
                    self.result.mismatches.append(Mismatch(mart, "datasources", 1, len(found)))
                    if not found:
                        continue
                table = load_table(con, mart)
                columns, want = table.columns, table.expected()
                raw = self.client.request("GET", f"{self.site}/datasources/{found[0]['id']}/content",
                                          expect_json=False).content
                try:
                    from finance_pipeline.platforms.tableau.publish import _extract_hyper

                    path = self.work / f"readback-{mart}.hyper"
                    path.write_bytes(_extract_hyper(raw))
                except (ValueError, KeyError) as exc:
                    self.result.mismatches.append(Mismatch(mart, "extract", "an extract", f"none ({exc})"))
                    continue
                got = hyper.summarise(process, path, [c.name for c in columns if c.kind == "decimal"])
                self.result.read_back += got["rows"]
                if got["columns"] != [c.name for c in columns]:
                    self.result.mismatches.append(Mismatch(mart, "columns", [c.name for c in columns],
                                                           got["columns"]))
                for field, value in want.items():
                    if got.get(field) != value:
                        self.result.mismatches.append(Mismatch(mart, field, value, got.get(field)))
        finally:
            con.close()


def _tds_hash(tds_bytes: bytes) -> str:
    return hashlib.sha256(tds_bytes).hexdigest()


def publish_live(settings: Settings, connection: Connection, *, dry_run: bool = False, read_back: bool = True,
                 marts: Sequence[str] | None = None, poll_s: float = 0.5, check_only: bool = False
                 ) -> PublishResult:
    """See the module doc. `check_only` runs the read-back alone (the asset check)."""
    if settings.postgres is None:
        raise SettingsError("the live Tableau data sources need FINANCE_WAREHOUSE=postgres and FINANCE_PG_*")
    register_secret(settings.postgres.password.value)
    started = time.monotonic()
    result = PublishResult(DESTINATION, "read-back" if check_only else "dry-run", primary="datasource")
    names = warehouse_marts(settings.postgres, marts or BI_MARTS)
    if dry_run:
        plan = DryRun(DESTINATION)
        pg = settings.postgres
        for mart in names:
            plan.add("datasource", "publish .tds live to Postgres (overwrite=true), then extract + refresh task",
                     mart, {"connection": f"postgres {pg.user}@{pg.host}:{pg.port}/{pg.database} "
                                          f"{SCHEMA}.{mart}", "password": "embedded (not shown)"})
        result.dry_run = {**plan.summary(), "saved_to": plan.save(settings)}
        return result
    refresh_schedule()  # a bad setting stops here, before anything is sent
    work_root = settings.data_dir / "publish" / "tableau"
    work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="tableau-live-", dir=str(work_root)))
    for kind in ("datasource", "extract", "refresh_task"):
        result.of(kind)
    con = None if check_only else open_warehouse(settings.postgres)
    try:
        ledger = None
        if con is not None:
            ledger = PublishLedger(con, DESTINATION).ensure_schema()
            result.run_id = ledger.run_id
        with pat_session(settings):
            auth = TableauAuth(connection)
            client = make_client(connection, auth=auth)
            try:
                run = _LiveRun(settings, client, auth, result, connection.get("project") or "Finance", work, poll_s,
                               ledger)
                run.start()
                if not check_only:
                    run.publish(names)
                if read_back or check_only:
                    with hyper.hyper_process(work / "logs") as process:
                        run.read_back(process, names)
            finally:
                result.requests = client.stats["requests"]
                client.close()
                auth.close()
    finally:
        if con is not None:
            con.close()
        shutil.rmtree(work, ignore_errors=True)
        result.seconds = time.monotonic() - started
    d, e, t = result.of("datasource"), result.of("extract"), result.of("refresh_task")
    log.info("tableau live publish: data sources created %d, overwritten %d, unchanged %d; extracts created %d, "
             "refreshed %d, failed %d; refresh tasks created %d, updated %d; %d rows read back, %d mismatches, "
             "%d requests, %.1f s", d.created, d.updated, d.unchanged, e.created, e.updated, e.failed, t.created,
             t.updated, result.read_back, len(result.mismatches), result.requests, result.seconds)
    return result
