"""The frame of a ledger publisher run and the read-back comparison by reference, for publishers
that want them (SAP Business One uses both; the older publishers keep their own copies for now).

`run_publisher` opens the warehouse and the publish ledger, builds the `PublishResult`, runs the
platform's `work(con, client, ledger, result, dry)` (which returns the records the destination
refused), closes what it opened, then saves the dry-run plan or quarantines the refusals.

`compare_by_reference` is the read-back every ledger destination does: each mart invoice once at the
destination under its reference, its fields equal, and nothing this publisher wrote left over.
"""
from __future__ import annotations

import time
from collections import defaultdict
from typing import Any, Callable, Iterable

import duckdb

from finance_pipeline.publish.destinations import DryRun, quarantine_rejections
from finance_pipeline.publish.ledger import PublishLedger
from finance_pipeline.publish.marts import MartInvoice
from finance_pipeline.publish.mechanics import Mismatch, PublishResult
from finance_pipeline.settings import Settings
from finance_pipeline.warehouse import WarehouseTarget, open_warehouse

Rejection = tuple[str, str, Any, str]  # (entity, key, body, the destination's message)
Work = Callable[[duckdb.DuckDBPyConnection, Any, PublishLedger, PublishResult, DryRun | None], list[Rejection]]


def run_publisher(settings: Settings, destination: str, warehouse_path: WarehouseTarget, *, primary: str,
                  object_types: Iterable[str], dry_run: bool, client: Any, make_client: Callable[[], Any],
                  work: Work) -> PublishResult:
    """One publisher run: `client` is used as given (and left open), else `make_client()` is called and
    the client closed at the end; `result.requests` is the client's request count."""
    started = time.monotonic()
    own_client = client is None
    con = open_warehouse(warehouse_path)
    ledger = PublishLedger(con, destination).ensure_schema()
    result = PublishResult(destination, ledger.run_id, primary=primary)
    for object_type in object_types:
        result.of(object_type)
    dry = DryRun(destination) if dry_run else None
    rejected: list[Rejection] = []
    try:
        client = client or make_client()
        rejected = work(con, client, ledger, result, dry) or []
    finally:
        if client is not None:
            result.requests = client.stats["requests"]
            if own_client:
                client.close()
        con.close()
    if dry is not None:
        result.dry_run = dry.summary()
        result.dry_run["plan_file"] = dry.save(settings)
    elif rejected:
        result.quarantined = quarantine_rejections(settings, destination, rejected)
    result.seconds = time.monotonic() - started
    return result


def compare_by_reference(invoices: Iterable[MartInvoice], remote: Iterable[dict], *, reference: Callable[[dict], Any],
                         fields: Callable[[MartInvoice, dict], Iterable[tuple[str, Any, Any]]],
                         remote_id: Callable[[dict], str], is_void: Callable[[dict], bool], managed_ids: set[str],
                         title: str) -> list[Mismatch]:
    """Mismatches between the marts and the destination's records, matched on `reference(record)` =
    invoice number: a reference held twice, a live mart invoice missing, each (field, expected, actual)
    of `fields(invoice, record)` that differs, and records we wrote (`managed_ids`) that are neither in
    the marts nor void."""
    by_ref: dict[Any, list[dict]] = defaultdict(list)
    for r in remote:
        by_ref[reference(r) or ""].append(r)
    out: list[Mismatch] = []
    for inv in invoices:
        n = inv.invoice_number
        found = by_ref.pop(n, [])
        if len(found) > 1:
            out.append(Mismatch(n, "count", 1, len(found)))
        if not found:
            if not inv.voided:
                out.append(Mismatch(n, "presence", f"in {title}", "missing"))
            continue
        out.extend(Mismatch(n, field, expected, actual) for field, expected, actual in fields(inv, found[0])
                   if actual != expected)
    for ref, rows in by_ref.items():
        for r in rows:
            if remote_id(r) in managed_ids and not is_void(r):
                out.append(Mismatch(ref, "presence", "not in the marts", remote_id(r)))
    return out
