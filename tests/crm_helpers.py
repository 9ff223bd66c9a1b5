"""What the HubSpot and Salesforce source tests share: the CRM's truth as of the clock, what a
load left in the warehouse, and one run of a source against an emulator."""
from __future__ import annotations

import duckdb

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.hubspot.oracle_pipeline import deals_as_of


def truth(sandbox, crm: str) -> tuple[dict[str, tuple], set[str]]:
    """({deal id: (stage, amount text, invoice number)} of live deals, {deleted deal ids})."""
    with sandbox.connect() as con:
        live = {d["deal_id"]: (d["stage"], str(d["amount"]), d["invoice_number"])
                for d in deals_as_of(con, crm, sandbox.clock)}
        gone = {r[0] for r in con.execute(f"select deal_id from {crm}_deals where deleted_at <= ?",
                                          [sandbox.clock]).fetchall()}
    return live, gone


def loaded(settings, table: str, columns: str) -> tuple[dict[str, tuple], set[str]]:
    """The same from the raw table; `columns` = id, stage, amount, invoice number, deleted flag."""
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        rows = con.execute(f"select {columns} from {table}").fetchall()
    finally:
        con.close()
    assert len(rows) == len({r[0] for r in rows})
    return {r[0]: tuple(r[1:4]) for r in rows if not r[4]}, {r[0] for r in rows if r[4]}


def run(settings, crm: str, make_source, running, quarantine=None):
    quarantine = quarantine if quarantine is not None else Quarantine(crm)
    conn = Connection(crm, running.url, running.emulator.credentials(), settings)
    return run_platform(settings, crm, make_source(conn, quarantine), quarantine)
