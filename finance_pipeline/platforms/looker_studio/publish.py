"""The BI marts as a Looker Studio connector snapshot (`snapshot.py`), read back through the endpoint.

Per mart of `finance_pipeline.publish.bi.BI_MARTS` (ledger object type `table`, key = the mart):
its content hash (schema + rows, `bi.MartTable.content_hash`) is compared with the snapshot's
manifest; only marts whose hash changed (or whose file is missing) get a new parquet file.  Then
the manifest is switched atomically (version + 1) — nothing at all is written when no mart changed.
Ledger: the changed tables are marked pending before their files are written and done once the new
manifest is in place, so a kill -9 at any point leaves either the old snapshot or the new one, and
the next run finishes the job.

Read-back: for every mart, `getSchema` (every field, names and order as the marts') and `getData`
of its money fields (paged by `READ_PAGE` rows as the connector pages) from the endpoint; row count
and the sum of every money field must equal the marts to the cent.

Run alone (the tests do): `python -m finance_pipeline.platforms.looker_studio.publish --data-dir DIR`.
"""
from __future__ import annotations

import logging
import sys
import time
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import duckdb

from finance_pipeline.http import ApiClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.looker_studio import snapshot
from finance_pipeline.platforms.looker_studio.client import make_client
from finance_pipeline.publish.bi import MartTable, load_marts
from finance_pipeline.publish.destinations import DryRun
from finance_pipeline.publish.ledger import PublishLedger
from finance_pipeline.publish.mechanics import Mismatch, PublishResult
from finance_pipeline.settings import Settings
from finance_pipeline.warehouse import WarehouseTarget, open_warehouse

log = logging.getLogger("finance_pipeline.looker_studio.publish")

DESTINATION = "looker_studio"
READ_PAGE = 100_000  # getData rows per read-back request (the endpoint answers at most 200 000)


def _columns(table: MartTable) -> list[dict]:
    return [{"name": c.name, "sql_type": c.sql_type, "kind": c.kind, "scale": c.scale} for c in table.columns]


def write_snapshot(con: duckdb.DuckDBPyConnection, directory: Path, marts: list[MartTable],
                   ledger: PublishLedger | None, result: PublishResult, dry: DryRun | None) -> dict:
    """Write what changed; returns the manifest now in place (or that would be, in a dry run)."""
    counts = result.of("table")
    old = snapshot.read_manifest(directory)
    tables: dict[str, dict] = {}
    changed: list[tuple[MartTable, str, str]] = []  # (mart, hash, op)
    for mart in marts:
        digest = mart.content_hash()
        have = old["tables"].get(mart.name)
        if have and have["hash"] == digest and (directory / have["file"]).exists():
            tables[mart.name] = have
            counts.unchanged += 1
        else:
            changed.append((mart, digest, "update" if have else "create"))
    dropped = sorted(set(old["tables"]) - {m.name for m in marts})
    if ledger is not None:
        # adopt the unchanged tables the manifest holds that the ledger does not know as done (a run
        # killed after writing its manifest, before marking done), whether or not others changed since
        known = ledger.entries("table")
        ledger.mark_done_many("table", [(n, t["hash"], t["file"]) for n, t in tables.items()
                                        if known.get(n) is None or known[n].status != "done"
                                        or known[n].content_hash != t["hash"]],
                              detail="in the snapshot already", event="found")
    if not changed and not dropped:
        return old
    if dry is not None:
        for mart, digest, op in changed:
            dry.add("table", op, mart.name, {"rows": mart.expected()["rows"], "hash": digest})
        return old
    assert ledger is not None
    directory.mkdir(parents=True, exist_ok=True)
    ledger.mark_pending_many("table", [(m.name, h, None) for m, h, _ in changed])
    for mart, digest, op in changed:
        file = snapshot.write_table_file(con, directory, mart.name, [c.name for c in mart.columns], digest)
        cols = _columns(mart)
        tables[mart.name] = {"file": file, "hash": digest, "rows": mart.expected()["rows"], "columns": cols,
                             "date_column": snapshot.date_column(cols), "version": old["version"] + 1}
        counts.bump(op)  # type: ignore[arg-type]
    manifest = {"format": snapshot.FORMAT, "version": old["version"] + 1,
                "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "tables": {m.name: tables[m.name] for m in marts}}
    snapshot.write_manifest(directory, manifest)
    ledger.mark_done_many("table", [(m.name, h, tables[m.name]["file"]) for m, h, _ in changed])
    keep = {t["file"] for t in manifest["tables"].values()} | {t["file"] for t in old["tables"].values()}
    snapshot.collect_garbage(directory, keep)
    log.info("looker_studio: snapshot v%d: %d marts written, %d unchanged, %d dropped", manifest["version"],
             len(changed), counts.unchanged, len(dropped))
    return manifest


def read_back(client: ApiClient, marts: list[MartTable]) -> tuple[int, list[Mismatch]]:
    """What the connector would get, compared with the marts (rows and money totals)."""
    rows_read = 0
    out: list[Mismatch] = []
    for mart in marts:
        config = {"configParams": {"table": mart.name}}
        schema = client.request("POST", "/connector/getSchema", json=config, idempotent=True).json()["schema"]
        names = [f["name"] for f in schema]
        if names != [c.name for c in mart.columns]:
            out.append(Mismatch(mart.name, "schema", [c.name for c in mart.columns], names))
            continue
        # only the fields compared (the money fields; the first field when there is none), in that
        # order, as the connector asks for a chart's fields: rows and sums are the same whatever else
        # a row carries, and the wide text columns (addresses, line items) stay on the server
        money_names = [col.name for col in mart.money_columns()]
        asked = money_names or names[:1]
        money = [(name, i) for i, name in enumerate(money_names)]
        sums = {name: Decimal(0) for name, _ in money}
        count, version, start, total = 0, None, 1, None
        while total is None or count < total:  # pages of READ_PAGE rows, as the connector pages
            data = client.request("POST", "/connector/getData", idempotent=True, json={
                **config, "fields": [{"name": n} for n in asked],
                "pagination": {"startRow": start, "rowCount": READ_PAGE}}).json()
            rows = data["rows"]
            if version is not None and data.get("version") != version:
                break  # the snapshot changed under the read: the counts below will not match, and say so
            version, total = data.get("version"), int(data.get("totalRows", len(rows)))
            count += len(rows)
            start += len(rows)
            for name, i in money:  # cells parsed as exact Decimals (the client's json_loads)
                cells = (r["values"][i] for r in rows)
                sums[name] += sum((v if isinstance(v, Decimal) else Decimal(str(v)) for v in cells if v is not None),
                                  Decimal(0))
            if not rows:
                break
        rows_read += count
        expected = mart.expected()
        if count != expected["rows"]:
            out.append(Mismatch(mart.name, "rows", expected["rows"], count))
        for name, _ in money:
            if sums[name] != expected[name]:
                out.append(Mismatch(mart.name, name, expected[name], sums[name]))
    return rows_read, out


def publish_marts(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget, *,
                  client: ApiClient | None = None, dry_run: bool = False) -> PublishResult:
    started = time.monotonic()
    directory = snapshot.snapshot_dir(settings.data_dir)
    con = open_warehouse(warehouse_path)
    ledger = PublishLedger(con, DESTINATION).ensure_schema()
    result = PublishResult(DESTINATION, ledger.run_id, primary="table")
    result.of("table")
    dry = DryRun(DESTINATION) if dry_run else None
    own = client is None
    try:
        marts = load_marts(con.cursor())  # its own cursor: mart reads never hold up the ledger's writes
        write_snapshot(con, directory, marts, None if dry else ledger, result, dry)
        if dry is None:
            client = client or make_client(connection)
            result.read_back, result.mismatches = read_back(client, marts)
            result.requests = client.stats["requests"]
    finally:
        if own and client is not None:
            client.close()
        con.close()
    if dry is not None:
        result.dry_run = dry.summary()
        result.dry_run["plan_file"] = dry.save(settings)
    result.seconds = time.monotonic() - started
    c = result.of("table")
    log.info("looker_studio publish: %d marts written, %d unchanged; %d rows read back, %d mismatches, %.1f s",
             c.written, c.unchanged, result.read_back, len(result.mismatches), result.seconds)
    return result


def main(argv: list[str] | None = None) -> int:
    from finance_pipeline.publish.destinations import run_cli

    return run_cli(DESTINATION, publish_marts, argv,
                   "Write the BI marts as the Looker Studio connector snapshot and read it back through the endpoint.")


if __name__ == "__main__":
    sys.exit(main())
