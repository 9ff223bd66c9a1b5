"""The marts to a Power BI push dataset: schema kept in step, each changed table reloaded whole.

One push dataset (`POWERBI_DATASET_NAME`, default "Finance marts") in the workspace, one table per
mart (`finance_pipeline.publish.bi`).  A run:

1. finds the dataset by name (GET datasets) — always, before creating anything, so a crash between
   the create and the ledger write, or a lost ledger, never makes a second dataset; creates it
   (POST datasets, `defaultMode: Push`) only when none exists;
2. compares every table's columns with the mart's and PUTs the tables that differ (a schema change
   forces that table's reload);
3. for each table whose content hash differs from the ledger's (or whose last load did not finish):
   marks it pending, DELETEs all its rows, POSTs the rows in batches of ≤ 10 000 within the
   per-dataset limits, then marks it done.  Power BI has no row keys or upserts — DELETE clears the
   whole table — so a table is the unit of idempotency: a reload always starts with the DELETE, and
   an interrupted one (crash, timeout, 5xx after the service may have stored the rows) is simply
   reloaded again.  Never an append on top of rows of unknown fate: no duplicates, none missing.
   The cost: between the DELETE and the last POST a dashboard sees the table partly loaded.
4. a POST refused with 400 (a value Power BI will not take) is split in halves until the bad row is
   isolated; that row is quarantined with Power BI's message and the rest are published;
5. reads back, per table, COUNTROWS and the SUM of every money column (executeQueries) and compares
   them with the marts (less the quarantined rows).

Creating push datasets is announced to end on 2027-10-31 (existing ones keep working); the
replacement is a semantic model on the Postgres warehouse (see docs/architecture.md, Publishers).
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Sequence

import duckdb

from finance_pipeline.http import ApiClient, ApiError, SlidingWindow
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.powerbi.client import make_client
from finance_pipeline.publish.bi import MartTable, load_marts, record_row_rejections, refused_keys, row_key
from finance_pipeline.publish.destinations import DryRun, quarantine_rejections
from finance_pipeline.publish.ledger import PublishLedger, content_hash
from finance_pipeline.publish.mechanics import ItemError, Mismatch, PublishResult
from finance_pipeline.settings import Settings, SettingsError, env
from finance_pipeline.warehouse import WarehouseTarget, open_warehouse

log = logging.getLogger("finance_pipeline.powerbi.publish")

# A push dataset is for dashboards: the reporting marts, not line-level facts. Push tables cap at
# 5M rows and a dataset takes 1M rows an hour, so the general ledger and order lines (hundreds of
# thousands of rows a year) belong in the warehouse that Power BI reads directly (DirectQuery on
# the Postgres warehouse), or in the Tableau extract, which carries every mart.
POWERBI_MARTS: tuple[str, ...] = (
    "fct_payouts", "fct_invoices", "fct_invoice_lines", "rpt_payout_reconciliation", "rpt_outstanding_balances",
    "rpt_profit_and_loss", "rpt_tax_obligations", "rpt_sales_trends",
)

DESTINATION = "powerbi"
DEFAULT_DATASET = "Finance marts"
SCHEMA_VERSION = "powerbi-push/1"
ROWS_PER_POST = 10_000
POSTS_PER_MINUTE = 120
ROWS_PER_HOUR = 1_000_000
BIG_TABLE_ROWS = 250_000
TABLE_ATTEMPTS = 3  # reloads of one table within a run after ambiguous failures
TYPES = {"int": "Int64", "decimal": "Decimal", "double": "Double", "bool": "Boolean", "date": "DateTime",
         "timestamp": "DateTime", "text": "String"}


def dataset_name() -> str:
    return env("POWERBI_DATASET_NAME") or DEFAULT_DATASET


def rows_per_post_setting() -> int:
    """`POWERBI_ROWS_PER_POST` (1..10 000, default 10 000): smaller posts mean smaller retries."""
    raw = env("POWERBI_ROWS_PER_POST") or str(ROWS_PER_POST)
    if not raw.isdigit() or not 1 <= int(raw) <= ROWS_PER_POST:
        raise SettingsError(f"POWERBI_ROWS_PER_POST={raw!r}: a whole number from 1 to {ROWS_PER_POST}")
    return int(raw)


# -- mapping --------------------------------------------------------------------------------------
def column_type(kind: str, scale: int) -> str:
    if kind == "decimal" and scale > 4:  # Power BI's Decimal is a fixed decimal with 4 places
        return "Double"
    return TYPES[kind]


def table_schema(table: MartTable) -> dict:
    return {"name": table.name,
            "columns": [{"name": c.name, "dataType": column_type(c.kind, c.scale)} for c in table.columns]}


def dataset_body(name: str, tables: Sequence[MartTable]) -> dict:
    return {"name": name, "defaultMode": "Push", "tables": [table_schema(t) for t in tables]}


def wire_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "decimal":
        return Decimal(value)  # sent with its exact digits (http.client.json_default)
    if kind == "date" and isinstance(value, date):
        return f"{value.isoformat()}T00:00:00"
    if kind == "timestamp" and isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return value.isoformat()
    if kind == "int":
        return int(value)
    if kind == "double":
        return float(value)
    if kind == "bool":
        return bool(value)
    return value if isinstance(value, str) else str(value)


def wire_rows(table: MartTable) -> list[dict]:
    names = [(c.name, c.kind) for c in table.columns]
    return [{n: wire_value(k, v) for (n, k), v in zip(names, row)} for row in table.rows]


def _message(exc: ApiError) -> str:
    try:
        import orjson

        error = orjson.loads(exc.body).get("error") or {}
        return f"{error.get('code')}: {error.get('message')}"
    except (ValueError, AttributeError):
        return str(exc)


class _RowsPerHour:
    """The 1 000 000 rows per hour a push dataset takes (client side, this process)."""

    def __init__(self, limit: int, scale: float) -> None:
        self.limit = limit
        self.window_s = 3600 / scale
        self._sent: collections.deque[tuple[float, int]] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self, n: int) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and now - self._sent[0][0] >= self.window_s:
                    self._sent.popleft()
                used = sum(k for _, k in self._sent)
                if used + n <= self.limit or not self._sent:
                    self._sent.append((now, n))
                    return
                wait = self.window_s - (now - self._sent[0][0])
            time.sleep(max(0.01, wait))


class TableLoadFailed(RuntimeError):
    """No definitive answer for part of a table's load; the table stays pending for a reload."""


# -- one run --------------------------------------------------------------------------------------
class _Run:
    def __init__(self, client: ApiClient, ledger: PublishLedger, result: PublishResult, group_id: str,
                 name: str, scale: float, rows_per_post: int) -> None:
        self.client = client
        self.ledger = ledger
        self.result = result
        self.base = f"groups/{group_id}/datasets"
        self.name = name
        self.rows_per_post = rows_per_post
        self.minute = SlidingWindow(POSTS_PER_MINUTE, 60, scale, margin=0.02, hold_until_release=True)
        self.hour = SlidingWindow(POSTS_PER_MINUTE, 3600, scale, margin=0.02, hold_until_release=True)
        self.rows_hour = _RowsPerHour(ROWS_PER_HOUR, scale)
        self.rejected: list[tuple[str, str, Any, str]] = []  # (entity, key, row, message)

    # -- dataset -----------------------------------------------------------------------------------
    def datasets_named(self) -> list[dict]:
        body = self.client.get_json(self.base)
        return [d for d in body.get("value", []) if d.get("name") == self.name]

    def ensure_dataset(self, tables: Sequence[MartTable]) -> str:
        counts = self.result.of("dataset")
        found = self.datasets_named()
        body = dataset_body(self.name, tables)
        digest = content_hash({"v": SCHEMA_VERSION, "body": body})
        if found:
            if len(found) > 1:
                self.result.mismatches.append(Mismatch(self.name, "datasets", 1, len(found)))
            dataset_id = found[0]["id"]
            entry = self.ledger.entry("dataset", self.name)
            if entry is None or entry.remote_id != dataset_id or entry.status != "done":
                self.ledger.mark_done_many("dataset", [(self.name, None, dataset_id)],
                                           detail="found in the workspace by name", event="found")
                if entry is not None and entry.status == "pending":
                    counts.recovered += 1
                else:
                    counts.adopted += 1
            else:
                counts.unchanged += 1
            return dataset_id
        self.ledger.mark_pending("dataset", self.name, digest)
        answer = self.client.request("POST", self.base, params={"defaultRetentionPolicy": "None"}, json=body).json()
        self.ledger.mark_done("dataset", self.name, digest, answer["id"])
        counts.created += 1
        return answer["id"]

    def ensure_schema(self, dataset_id: str, tables: Sequence[MartTable]) -> set[str]:
        """PUT every table whose columns differ; returns the names that changed (to be reloaded)."""
        remote = {t["name"]: t.get("columns", [])
                  for t in self.client.get_json(f"{self.base}/{dataset_id}/tables").get("value", [])}
        changed = set()
        counts = self.result.of("schema")
        for table in tables:
            want = table_schema(table)
            have = [{"name": c.get("name"), "dataType": c.get("dataType")} for c in remote.get(table.name, [])]
            if have == want["columns"]:
                counts.unchanged += 1
                continue
            self.client.request("PUT", f"{self.base}/{dataset_id}/tables/{table.name}", json=want)
            counts.bump("update" if table.name in remote else "create")
            changed.add(table.name)
        return changed

    # -- rows -----------------------------------------------------------------------------------------
    def _post(self, path: str, batch: list[tuple[int, dict]], table_rows: int) -> None:
        window = self.hour if table_rows >= BIG_TABLE_ROWS else self.minute
        self.rows_hour.acquire(len(batch))
        window.acquire()
        try:
            self.client.request("POST", path, json={"rows": [r for _, r in batch]})
        finally:
            window.release()

    def _post_isolating(self, path: str, batch: list[tuple[int, dict]], table: str, sent: list[int],
                        bad: list[tuple[int, dict, str]]) -> None:
        """POST a batch; on 400 split it until the refused rows are alone (they go to `bad`)."""
        try:
            self._post(path, batch, sent[0])
            sent[0] += len(batch)
        except ApiError as exc:
            if exc.status != 400:
                raise
            if len(batch) == 1:
                bad.append((batch[0][0], batch[0][1], _message(exc)))
                return
            mid = len(batch) // 2
            self._post_isolating(path, batch[:mid], table, sent, bad)
            self._post_isolating(path, batch[mid:], table, sent, bad)

    def load_table(self, dataset_id: str, table: MartTable, digest: str) -> None:
        counts = self.result.of("table")
        path = f"{self.base}/{dataset_id}/tables/{table.name}/rows"
        keyed = list(enumerate(wire_rows(table)))  # (index, row): a row key is computed only if refused
        self.ledger.mark_pending("table", table.name, digest, remote_id=dataset_id)
        last_error = ""
        for attempt in range(1, TABLE_ATTEMPTS + 1):
            sent, bad = [0], []
            try:
                self.client.request("DELETE", path, expect_json=False)
                for start in range(0, len(keyed), self.rows_per_post):
                    self._post_isolating(path, keyed[start:start + self.rows_per_post], table.name, sent, bad)
            except ApiError as exc:
                if exc.status in (401, 403, 404):
                    raise
                last_error = str(exc)
                log.warning("powerbi %s: load attempt %d had no definitive answer (%s); reloading from the DELETE",
                            table.name, attempt, exc)
                continue
            self._record_rejections(table, [(row_key(table.name, table.rows[i]), row, m) for i, row, m in bad])
            self.ledger.mark_done("table", table.name, digest, dataset_id,
                                  detail=f"{sent[0]} rows loaded, {len(bad)} refused")
            counts.bump("update")
            self.result.of("row").created += sent[0]
            return
        counts.unresolved += 1
        self.result.errors.append(ItemError("table", table.name, f"left pending for the next run: {last_error}"))

    def _record_rejections(self, table: MartTable, bad: list[tuple[str, dict, str]]) -> None:
        self.rejected += record_row_rejections(self.ledger, self.result, "Power BI", table.name, bad)

    def publish(self, tables: Sequence[MartTable]) -> str:
        dataset_id = self.ensure_dataset(tables)
        schema_changed = self.ensure_schema(dataset_id, tables)
        entries = self.ledger.entries("table")
        counts = self.result.of("table")
        for table in tables:
            digest = table.content_hash()
            entry = entries.get(table.name)
            current = (entry is not None and entry.status == "done" and entry.content_hash == digest
                       and entry.remote_id == dataset_id and table.name not in schema_changed)
            if current:
                counts.unchanged += 1
                continue
            if entry is not None and entry.status == "pending":
                counts.recovered += 1
            self.load_table(dataset_id, table, digest)
        return dataset_id

    # -- read-back --------------------------------------------------------------------------------
    def read_back(self, dataset_id: str, tables: Sequence[MartTable]) -> None:
        refused = refused_keys(self.ledger)
        for table in tables:
            expected = table.expected(refused)
            money = [c for c in table.money_columns() if column_type(c.kind, c.scale) in ("Decimal", "Double")]
            items = [f'"rows", COUNTROWS(\'{table.name}\')']
            items += [f'"{c.name}", SUM(\'{table.name}\'[{c.name}])' for c in money]
            answer = self.client.request("POST", f"{self.base}/{dataset_id}/executeQueries", idempotent=True, json={
                "queries": [{"query": f"EVALUATE ROW({', '.join(items)})"}],
                "serializerSettings": {"includeNulls": True}}).json()
            got = answer["results"][0]["tables"][0]["rows"][0]
            self.result.read_back += int(got.get("[rows]") or 0)
            for field, want in expected.items():
                actual = got.get(f"[{field}]")
                if field == "rows":
                    ok = actual == want
                else:
                    ok = (Decimal(str(actual)) if actual is not None else Decimal(0)) == want
                if not ok:
                    self.result.mismatches.append(Mismatch(table.name, field, want, actual))


def _dry_run(con: duckdb.DuckDBPyConnection, tables: Sequence[MartTable], name: str) -> DryRun:
    plan = DryRun(DESTINATION)
    has_ledger = con.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'ops' "
                             "AND table_name = 'publish_ledger'").fetchone()[0]
    ledger = PublishLedger(con, DESTINATION)
    dataset = ledger.entry("dataset", name) if has_ledger else None
    if dataset is None or dataset.status != "done":
        plan.add("dataset", "create (unless one named so exists)", name, dataset_body(name, tables))
    entries = ledger.entries("table") if has_ledger else {}
    for table in tables:
        entry = entries.get(table.name)
        if entry is not None and entry.status == "done" and entry.content_hash == table.content_hash():
            continue
        rows = wire_rows(table)
        plan.add("table", "replace rows (DELETE all, then POST)", table.name, {"rows": rows[:3]},
                 rows=len(rows), posts=max(1, -(-len(rows) // ROWS_PER_POST)))
    return plan


def publish_marts(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget, *,
                  client: ApiClient | None = None, dry_run: bool | None = None,
                  rows_per_post: int | None = None, read_back: bool = True) -> PublishResult:
    """Publish every available mart to the push dataset; read back; compare.  Safe to re-run at any
    time and after any crash (see the module docstring)."""
    started = time.monotonic()
    dry_run = settings.publish_dry_run if dry_run is None else dry_run
    name = dataset_name()
    rows_per_post = rows_per_post or rows_per_post_setting()
    con = open_warehouse(warehouse_path, read_only=dry_run)
    result = PublishResult(DESTINATION, "dry-run", primary="table")
    own_client = client is None
    run = None
    try:
        tables = load_marts(con, POWERBI_MARTS)
        if dry_run:
            plan = _dry_run(con, tables, name)
            result.dry_run = {**plan.summary(), "saved_to": plan.save(settings)}
            return result
        ledger = PublishLedger(con, DESTINATION).ensure_schema()
        result.run_id = ledger.run_id
        for kind in ("dataset", "schema", "table", "row"):
            result.of(kind)
        client = client or make_client(connection)
        scale = settings.time_scale if settings.mode == "sandbox" else 1.0
        run = _Run(client, ledger, result, connection.secret("group_id"), name, scale, rows_per_post)
        dataset_id = run.publish(tables)
        if read_back:
            run.read_back(dataset_id, tables)
    finally:
        if client is not None:
            result.requests = client.stats["requests"]
            if own_client:
                client.close()
                auth = getattr(client, "auth", None)
                if auth is not None and hasattr(auth, "close"):
                    auth.close()
        con.close()
        result.seconds = time.monotonic() - started
    if run is not None and run.rejected:
        result.quarantined = quarantine_rejections(settings, DESTINATION, run.rejected)
    t = result.of("table")
    log.info("powerbi publish: tables reloaded %d, unchanged %d, unresolved %d, recovered %d; rows sent %d, "
             "refused %d; %d rows read back, %d mismatches, %d requests, %.1f s", t.updated, t.unchanged,
             t.unresolved, t.recovered, result.of("row").created, result.of("row").failed, result.read_back,
             len(result.mismatches), result.requests, result.seconds)
    return result


def check_read_back(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget) -> PublishResult:
    """Only the read-back (the asset check): the destination compared with the marts, nothing written."""
    result = PublishResult(DESTINATION, "read-back", primary="table")
    con = open_warehouse(warehouse_path, read_only=True)
    client = make_client(connection)
    try:
        tables = load_marts(con, POWERBI_MARTS)
        ledger = PublishLedger(con, DESTINATION)
        run = _Run(client, ledger, result, connection.secret("group_id"), dataset_name(), 1.0, ROWS_PER_POST)
        found = run.datasets_named()
        if len(found) != 1:
            result.mismatches.append(Mismatch(dataset_name(), "datasets", 1, len(found)))
            return result
        run.read_back(found[0]["id"], tables)
    finally:
        client.close()
        if hasattr(client.auth, "close"):
            client.auth.close()
        con.close()
    return result


def main(argv: list[str] | None = None) -> int:
    from finance_pipeline.publish.destinations import run_cli

    return run_cli(DESTINATION, publish_marts, argv, "Publish the marts to a Power BI push dataset.")


if __name__ == "__main__":
    import sys

    sys.exit(main())
