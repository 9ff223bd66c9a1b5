"""QuickBooks as a source: query paging, the LastUpdatedTime cursor, deletes through CDC (or, when the
cursor is older than CDC's 30 days, a re-list of ids against the warehouse), bad records quarantined;
the staging models build on what it loaded and keep money exact."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.quickbooks import source as qbo_source
from finance_pipeline.platforms.quickbooks.client import make_client, write
from finance_pipeline.platforms.quickbooks.reference import MINOR_VERSION
from finance_pipeline.platforms.quickbooks.source import quickbooks_source
from finance_pipeline.platforms.quickbooks.wire import COMPANY_TZ, qbo_time
from finance_pipeline.sandbox.world import INITIAL_CLOCK
from finance_pipeline.settings import PostgresSettings, Secret
from pg_helpers import pg_query, pg_server  # noqa: F401  (pg_server is a fixture)
from quickbooks_fixtures import QboEnv, qbo_env  # noqa: F401

DBT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"


def _sale(customer: str, number: str, qty: int, price: str, code: str = "2", discount: str | None = None) -> dict:
    amount = (Decimal(qty) * Decimal(price)).quantize(Decimal("0.01"))
    lines = [{"DetailType": "SalesItemLineDetail", "Amount": amount, "Description": "Linen curtain 140x220",
              "SalesItemLineDetail": {"ItemRef": {"value": "11"}, "Qty": qty, "UnitPrice": Decimal(price),
                                      "TaxCodeRef": {"value": code}}}]
    if discount:
        lines.append({"DetailType": "DiscountLineDetail", "Amount": Decimal(discount),
                      "DiscountLineDetail": {"PercentBased": False}})
    return {"CustomerRef": {"value": customer}, "DocNumber": number, "TxnDate": "2025-11-03", "DueDate": "2025-12-03",
            "Line": lines}


def _load(env: QboEnv, quarantine: Quarantine | None = None):
    quarantine = quarantine or Quarantine("quickbooks")
    return run_platform(env.settings, "quickbooks", quickbooks_source(env.connection(), quarantine), quarantine)


def _rows(env: QboEnv, table: str) -> dict[str, tuple]:
    con = duckdb.connect(str(env.warehouse), read_only=True)
    try:
        return {r[0]: r[1:] for r in con.execute(
            f"SELECT id, doc_number, total_amt, voided FROM raw_quickbooks.{table}").fetchall()}
    finally:
        con.close()


def test_incremental_reads_changes_and_deletes(qbo_env, monkeypatch):
    monkeypatch.setattr(qbo_source, "LOOKBACK_S", 0)  # so the second run sees only what changed
    client = make_client(qbo_env.connection())
    cust = write(client, "Customer", {"DisplayName": "Owner's trade account"}, "c1")
    invoices = [write(client, "Invoice", _sale(cust["Id"], f"Q-{n}", n + 1, "45.00", discount="5.00" if n == 2 else None),
                      f"i{n}") for n in range(5)]
    write(client, "SalesReceipt", {**_sale(cust["Id"], "SR-1", 3, "0.9875"), "PaymentRefNum": "cash"}, "s1")
    first = _load(qbo_env)
    assert first.rows.get("invoices") == 5 and first.rows.get("sales_receipts") == 1
    rows = _rows(qbo_env, "invoices")
    assert rows[invoices[2]["Id"]][1] == "156.00"  # 3 x 45.00 - 5.00 discount = 130.00, + 20 % VAT after discount

    qbo_env.emulator.advance_clock(5)
    inv = invoices[1]
    write(client, "Invoice", {**_sale(cust["Id"], "Q-1", 10, "45.00"), "Id": inv["Id"], "SyncToken": inv["SyncToken"]},
          "u1")
    victim = invoices[4]
    write(client, "Invoice", {"Id": victim["Id"], "SyncToken": victim["SyncToken"]}, "d1", operation="delete")
    client.close()
    second = _load(qbo_env)
    assert second.rows.get("invoices") == 2, second.rows  # the update and the deletion, nothing else
    rows = _rows(qbo_env, "invoices")
    assert victim["Id"] not in rows and len(rows) == 4
    assert rows[inv["Id"]][1] == "540.00"  # 10 x 45.00 + 20 % VAT

    third = _load(qbo_env)
    assert not third.rows.get("invoices")
    # runs two and three asked CDC for invoices and sales receipts (payments, never seen, have no
    # cursor and are read in full); none had to re-list ids
    assert qbo_env.emulator.counters["cdc"] == 4
    assert qbo_env.emulator.counters["projections"] == 0


def _month_old_delete(env: QboEnv) -> tuple[list[dict], dict, dict]:
    """Five invoices loaded; one deleted; the clock then moved 31 days on and another edited: the
    deletion is out of CDC's reach by the next run."""
    client = make_client(env.connection())
    cust = write(client, "Customer", {"DisplayName": "Seasonal account"}, "c1")
    invoices = [write(client, "Invoice", _sale(cust["Id"], f"Q-{n}", 1, "10.00"), f"i{n}") for n in range(5)]
    assert _load(env).rows.get("invoices") == 5
    victim, edited = invoices[1], invoices[3]
    write(client, "Invoice", {"Id": victim["Id"], "SyncToken": victim["SyncToken"]}, "d1", operation="delete")
    env.emulator.advance_clock(31 * 86400)
    edited = write(client, "Invoice", {**_sale(cust["Id"], "Q-3", 2, "10.00"), "Id": edited["Id"],
                                       "SyncToken": edited["SyncToken"]}, "u1")
    client.close()
    return invoices, victim, edited


def test_a_delete_older_than_cdc_reaches_is_found_by_relisting_ids(qbo_env, monkeypatch):
    monkeypatch.setattr(qbo_source, "LOOKBACK_S", 0)  # so the second run reads only what changed
    invoices, victim, edited = _month_old_delete(qbo_env)
    second = _load(qbo_env)
    rows = _rows(qbo_env, "invoices")
    assert victim["Id"] not in rows and len(rows) == 4
    assert rows[edited["Id"]][1] == "24.00"  # 2 x 10.00 + 20 % VAT: still read incrementally
    assert second.rows.get("invoices") == 2, second.rows  # the edit and the deletion, nothing else
    emulator = qbo_env.emulator
    # one `SELECT Id` page, for invoices (sales receipts and payments, never seen, have no cursor)
    assert emulator.counters["projections"] == 1
    # the next run is back within CDC's window: no re-list
    before = emulator.counters["projections"]
    assert not _load(qbo_env).rows.get("invoices")
    assert emulator.counters["projections"] == before


def test_relisting_compares_with_the_postgres_warehouse(qbo_env, pg_server, monkeypatch):
    """The ids to check come from the raw table through the pipeline's own destination: on the
    Postgres warehouse too."""
    monkeypatch.setattr(qbo_source, "LOOKBACK_S", 0)
    database = pg_server.create_database("qbo_relist")
    qbo_env.settings = dataclasses.replace(qbo_env.settings, warehouse="postgres", postgres=PostgresSettings(
        pg_server.host, pg_server.port, pg_server.user, Secret(pg_server.password, "FINANCE_PG_PASSWORD"),
        database, "disable"))
    invoices, victim, edited = _month_old_delete(qbo_env)
    _load(qbo_env)
    held = dict(pg_query(pg_server, database, "select id, total_amt from raw_quickbooks.invoices"))
    assert victim["Id"] not in held and len(held) == 4
    assert held[edited["Id"]] == "24.00"
    assert qbo_env.emulator.counters["projections"] == 1


def test_cdc_refusing_a_too_old_changed_since_also_relists(qbo_env, monkeypatch):
    """Were our own reckoning of the window off (clocks apart), QuickBooks' refusal decides."""
    monkeypatch.setattr(qbo_source, "CDC_WINDOW", timedelta(days=365))
    monkeypatch.setattr(qbo_source, "LOOKBACK_S", 0)
    invoices, victim, _ = _month_old_delete(qbo_env)
    client = make_client(qbo_env.connection())
    since = "2000-01-01T00:00:00Z"
    resp = client.request("GET", "cdc", params={"entities": "Invoice", "changedSince": since,
                                                "minorversion": MINOR_VERSION}, ok_statuses=(400,))
    client.close()
    assert resp.status == 400
    assert resp.json()["Fault"]["type"] == "ValidationFault"
    assert [e["Detail"] for e in resp.json()["Fault"]["Error"]] == [
        f"Operation cdc with changedSince date {since} which is older than fixed days is not supported."]
    cdc_before = qbo_env.emulator.counters["cdc"]
    _load(qbo_env)
    rows = _rows(qbo_env, "invoices")
    assert victim["Id"] not in rows and len(rows) == 4
    assert qbo_env.emulator.counters["cdc"] == cdc_before  # every CDC call of that run was refused
    assert qbo_env.emulator.counters["projections"] == 1


def test_writes_at_a_standing_clock_are_stamped_on_it_and_read_again(qbo_env):
    """The company's clock is the sandbox clock (a bare emulator: the sandbox's initial clock), never the
    wall clock, and it stands still between `sandbox advance`s: a document saved at the very instant of
    the last run's newest stamp (as the publisher's writes are) is still read by the next run's cursor
    (`>=`, an hour's lookback, merged by Id), and a deletion at that instant by its CDC pass."""
    stamp = qbo_time(int(INITIAL_CLOCK.timestamp() * 1000))
    client = make_client(qbo_env.connection())
    cust = write(client, "Customer", {"DisplayName": "Standing clock"}, "c1")
    first, second = (write(client, "Invoice", _sale(cust["Id"], f"Q-{n}", 1, "10.00"), f"i{n}")
                     for n in (1, 2))
    undated = write(client, "Invoice", {k: v for k, v in _sale(cust["Id"], "Q-3", 1, "10.00").items() if k != "TxnDate"}, "i3")
    assert {d["MetaData"]["LastUpdatedTime"] for d in (cust, first, second, undated)} == {stamp}
    assert {d["MetaData"]["CreateTime"] for d in (cust, first, second, undated)} == {stamp}
    assert undated["TxnDate"] == INITIAL_CLOCK.astimezone(COMPANY_TZ).date().isoformat()
    assert client.get_json("preferences", params={"minorversion": MINOR_VERSION})["time"] == stamp
    assert _load(qbo_env).rows.get("invoices") == 3

    edited = write(client, "Invoice", {**_sale(cust["Id"], "Q-1", 4, "10.00"), "Id": first["Id"],
                                       "SyncToken": first["SyncToken"]}, "u1")
    write(client, "Invoice", {"Id": second["Id"], "SyncToken": second["SyncToken"]}, "d1", operation="delete")
    assert edited["MetaData"]["LastUpdatedTime"] == stamp and edited["MetaData"]["CreateTime"] == stamp
    cdc = client.get_json("cdc", params={"entities": "Invoice", "changedSince": stamp, "minorversion": MINOR_VERSION})
    tombstones = [d for d in cdc["CDCResponse"][0]["QueryResponse"][0]["Invoice"] if d.get("status") == "Deleted"]
    assert tombstones == [{"Id": second["Id"], "status": "Deleted", "domain": "QBO",
                           "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}]
    client.close()
    _load(qbo_env)
    rows = _rows(qbo_env, "invoices")
    assert second["Id"] not in rows and len(rows) == 2
    assert rows[first["Id"]][1] == "48.00"  # 4 x 10.00 + 20 % VAT: the edit at the cursor's own instant
    con = duckdb.connect(str(qbo_env.warehouse), read_only=True)
    try:
        assert {r[0] for r in con.execute("select distinct updated_at from raw_quickbooks.invoices").fetchall()} \
            == {INITIAL_CLOCK}
    finally:
        con.close()


def test_bad_records_are_quarantined(qbo_env, monkeypatch):
    client = make_client(qbo_env.connection())
    cust = write(client, "Customer", {"DisplayName": "A"}, "c1")
    write(client, "Invoice", _sale(cust["Id"], "Q-1", 1, "10.00"), "i1")
    write(client, "Invoice", _sale(cust["Id"], "Q-2", 1, "10.00"), "i2")
    client.close()
    real = qbo_source.flatten

    def corrupt(doc: dict) -> dict:  # a record whose amount does not parse, as a broken proxy might send it
        return real({**doc, "TotalAmt": "12,00"} if doc.get("DocNumber") == "Q-2" else doc)

    monkeypatch.setattr(qbo_source, "flatten", corrupt)
    quarantine = Quarantine("quickbooks")
    result = _load(qbo_env, quarantine)
    assert result.rows.get("invoices") == 1 and result.quarantined == 1
    con = duckdb.connect(str(qbo_env.warehouse), read_only=True)
    reasons = con.execute("SELECT entity, reason FROM ops.quarantine WHERE platform = 'quickbooks'").fetchall()
    con.close()
    assert len(reasons) == 1 and reasons[0][0] == "invoices" and "total_amt" in reasons[0][1]


def test_staging_models_build_with_exact_money(qbo_env, tmp_path):
    client = make_client(qbo_env.connection())
    cust = write(client, "Customer", {"DisplayName": "Showroom"}, "c1")
    write(client, "Invoice", _sale(cust["Id"], "Q-1", 3, "45.00", discount="5.00"), "i1")
    write(client, "SalesReceipt", _sale(cust["Id"], "SR-1", 7, "0.9875"), "s1")
    client.close()
    _load(qbo_env)
    env = {**os.environ, "FINANCE_WAREHOUSE_PATH": str(qbo_env.warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    dbt = Path(sys.executable).with_name("dbt")
    done = subprocess.run(
        [str(dbt), "build", "--select", "staging.quickbooks", "--exclude", "stg_quickbooks__payments",
         "stg_quickbooks__payment_applications",  # no Payment written here: no raw table
         "--project-dir", str(DBT_DIR), "--profiles-dir",
         str(DBT_DIR), "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    con = duckdb.connect(str(qbo_env.warehouse), read_only=True)
    try:
        inv = con.execute("SELECT doc_number, total_amount, tax_amount, subtotal_amount, open_amount, currency, "
                          "issued_on::varchar FROM staging.stg_quickbooks__invoices").fetchall()
        assert inv == [("Q-1", Decimal("156.00"), Decimal("26.00"), Decimal("130.00"), Decimal("156.00"), "GBP",
                        "2025-11-03")]
        lines = con.execute("SELECT document_type, detail_type, quantity, unit_price, amount FROM "
                            "staging.stg_quickbooks__lines ORDER BY document_type, line_number").fetchall()
        assert lines == [("invoice", "SalesItemLineDetail", Decimal("3.0000"), Decimal("45.0000"), Decimal("135.00")),
                         ("invoice", "DiscountLineDetail", None, None, Decimal("5.00")),
                         ("sales_receipt", "SalesItemLineDetail", Decimal("7.0000"), Decimal("0.9875"),
                          Decimal("6.91"))]
        receipt = con.execute("SELECT total_amount, tax_amount FROM staging.stg_quickbooks__sales_receipts").fetchone()
        assert receipt == (Decimal("8.29"), Decimal("1.38"))
        described = dict(con.execute("DESCRIBE staging.stg_quickbooks__invoices").fetchall()[i][:2]
                         for i in range(3))
        assert described
    finally:
        con.close()
