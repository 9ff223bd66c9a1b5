"""Publishing and the read-back checks on the PostgreSQL warehouse (FINANCE_WAREHOUSE=postgres): the daily
job with every destination's publish asset, on a real server, reads the marts there and keeps the publish
ledger there — no embedded DuckDB file is created — and a second run of the publishers writes nothing.

Shopify and Stripe give what every destination needs: trade invoices (Shopify's trade orders), card
payments applied to them (Stripe), refunds and processor payouts (Xero's summary invoices). The small
world has no refund of a trade invoice, so two are added to `marts.fct_refunds` on the server, as
tests/test_xero_credit_notes.py does on DuckDB, for Xero's credit notes; and a refused record is
quarantined in `ops.quarantine` there."""
from __future__ import annotations

import shutil
import time
from decimal import Decimal

import pytest

from finance_pipeline.defs.publish import READ_BACK_CHECK, publish_assets
from finance_pipeline.publish.destinations import destination_names, quarantine_rejections
from finance_pipeline.settings import Settings
from pg_helpers import pg_env, pg_query, pg_server  # noqa: F401  (pg_server is a fixture)
from pipeline_helpers import pipeline_env, run_job

pytestmark = pytest.mark.timeout(900)

SOURCES = {"shopify", "stripe"}
# assets another change ports to Postgres (alerts, the report): left out of these runs
NOT_HERE = ("ops", "reports")
DESTINATIONS = sorted(a.key.path[1] for a in publish_assets)


def _published(result) -> dict[str, dict]:
    out = {}
    for event in result.get_asset_materialization_events():
        key = event.materialization.asset_key.path
        if key[0] == "publish":
            out[key[1]] = {k: v.value for k, v in event.materialization.metadata.items()}
    return out


def _checks(result) -> dict[str, bool]:
    return {ev.asset_key.path[1]: ev.passed for ev in result.get_asset_check_evaluations()
            if ev.check_name == READ_BACK_CHECK}


def _add_trade_refunds(pg, database: str, n: int = 2) -> list[str]:
    """A partial refund (a third of the goods with its share of tax) of `n` open trade invoices."""
    rows = pg_query(pg, database, """
        select invoice_number, channel, order_id, currency, issued_on, subtotal_amount, tax_amount
        from marts.fct_invoices where status <> 'voided' and subtotal_amount > 30 and tax_amount > 0
        order by invoice_number limit %s""", (n,))
    assert len(rows) == n
    ids = []
    for k, (number, channel, order_id, currency, issued, sub, tax) in enumerate(rows):
        goods = (sub / 3).quantize(Decimal("0.01"))
        rtax = (tax * goods / sub).quantize(Decimal("0.01"))
        ids.append(f"re_pg_{k}")
        pg_query(pg, database, """
            insert into marts.fct_refunds (channel, refund_id, order_id, refunded_at, currency, goods_amount,
                                           shipping_amount, tax_amount, total_amount)
            values (%s, %s, %s, %s::timestamptz, %s, %s, 0, %s, %s)""",
               (channel, ids[-1], order_id, f"{issued} 12:00:00+00", currency, goods, rtax, goods + rtax))
    return ids


def test_publishers_and_read_back_run_on_postgres(pg_server, tmp_path, small_world_dir, capfd):
    data = tmp_path / "pg"
    shutil.copytree(small_world_dir / "sandbox", data / "sandbox")
    database = pg_server.create_database("publish")
    env = pg_env(pg_server, database)
    started = time.time()

    # the daily job: ingest, dbt and every publisher with its read-back check
    first = run_job(data, "daily_close", sources=SOURCES, keep=lambda key: key[0] not in NOT_HERE, **env)
    published = _published(first)
    assert sorted(published) == DESTINATIONS
    assert not [d for d, meta in published.items() if isinstance(meta.get("skipped"), str)], published
    checks = _checks(first)
    assert sorted(checks) == DESTINATIONS and all(checks.values()), checks
    assert all(meta["mismatches"] == 0 and meta["failed"] == 0 for meta in published.values()), published
    assert all(meta["created"] + meta["updated"] > 0 for meta in published.values()), published

    # the ledger is on the server, with what every destination holds
    ledger = dict(pg_query(pg_server, database, "select destination, count(*) from ops.publish_ledger "
                                              "where status = 'done' group by destination"))
    assert sorted(ledger) == sorted(destination_names()), ledger
    assert pg_query(pg_server, database, "select count(*) from ops.publish_log")[0][0] >= sum(ledger.values())
    assert not (data / "warehouse.duckdb").exists()
    assert not list(data.rglob("warehouse.duckdb*"))

    # publishing again changes nothing anywhere
    rows_before = pg_query(pg_server, database, "select count(*) from ops.publish_ledger")[0][0]
    second = run_job(data, "daily_close", sources=SOURCES, keep=lambda key: key[0] == "publish", **env)
    again = _published(second)
    assert sorted(again) == DESTINATIONS
    assert {d: (m["created"], m["updated"]) for d, m in again.items()} == {d: (0, 0) for d in DESTINATIONS}
    checks = _checks(second)
    assert sorted(checks) == DESTINATIONS and all(checks.values()), checks
    assert pg_query(pg_server, database, "select count(*) from ops.publish_ledger")[0][0] == rows_before

    # Xero's credit notes read fct_refunds on the server too
    refunds = _add_trade_refunds(pg_server, database)
    third = run_job(data, "daily_close", sources=SOURCES, keep=lambda key: key == ("publish", "xero_trade_invoices"),
                    FINANCE_DESTINATIONS="xero", **env)
    assert _checks(third) == {"xero_trade_invoices": True}
    notes = pg_query(pg_server, database, "select business_key, status, remote_id from ops.publish_ledger "
                                        "where destination = 'xero' and object_type = 'credit_note'")
    assert len(notes) == len(refunds) and all(status == "done" and remote for _, status, remote in notes), notes
    assert not (data / "warehouse.duckdb").exists()

    # records a destination refuses are quarantined on the server too (what every publisher calls)
    with pipeline_env(data, **env):
        settings = Settings.from_env()
        assert quarantine_rejections(settings, "xero", [("credit_note", "CN-re_pg_9", {"Total": "1.00"},
                                                         "Xero: the contact is archived")]) == 1
    assert pg_query(pg_server, database, "select platform, entity, reason from ops.quarantine where platform = %s",
                  ("xero",)) == [("xero", "credit_note", "Xero: the contact is archived")]
    assert not (data / "warehouse.duckdb").exists()

    # the server's password reached no log and no file the runs wrote
    out, err = capfd.readouterr()
    assert pg_server.password not in out + err
    for path in data.rglob("*"):
        if path.is_file() and path.stat().st_mtime >= started and path.suffix in (".json", ".log", ".txt", ".yaml"):
            assert pg_server.password not in path.read_text(errors="replace"), path

