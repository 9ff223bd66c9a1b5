"""HubSpot + Salesforce in the marts: `rpt_pipeline_to_cash` after the main job on a small world
equals the Python oracle (platforms/hubspot/oracle_pipeline.py) to the cent, every status occurs,
and the monthly summary adds up.  (Syncs after `sandbox advance` are covered per CRM in
test_hubspot_source.py / test_salesforce_source.py; one pipeline run here keeps the file short.)"""
from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finance_pipeline.platforms.hubspot.oracle_pipeline import expected
from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import _norm, mart_rows, row_differences, run_job

WORLD = 2_000
MART = "rpt_pipeline_to_cash"
# the CRMs and what their invoices come from: the run stays small and other platforms' work apart
SOURCES = "shopify,stripe,hubspot,salesforce"


def differences(data: Path) -> list[str]:
    want = expected(Sandbox(data / "sandbox"))
    got = mart_rows(data / "warehouse.duckdb", MART)
    return row_differences(want, got, norm=_norm)


@pytest.fixture(scope="module")
def crm_run(tmp_path_factory, small_world_dir) -> Path:
    data = tmp_path_factory.mktemp("crm-run")
    shutil.copytree(small_world_dir / "sandbox", data / "sandbox")
    run_job(data, job="hourly_sync", sources=set(SOURCES.split(",")), size=WORLD, http_timeout_s=10)
    return data


def test_pipeline_to_cash_equals_the_oracle(crm_run):
    assert differences(crm_run) == []
    rows = mart_rows(crm_run / "warehouse.duckdb", MART).values()
    statuses = {r["pipeline_status"] for r in rows}
    assert {"open", "lost", "won_not_invoiced", "paid", "invoiced_unpaid"} <= statuses, statuses
    assert {r["crm"] for r in rows} == {"hubspot", "salesforce"}
    won = [r for r in rows if r["invoice_number"] and r["invoice_status"] != "voided"]
    assert any(r["amount_difference"] != 0 for r in won) and any(r["amount_difference"] == 0 for r in won)
    assert all(isinstance(r["deal_amount"], Decimal) for r in rows)


def test_monthly_summary_adds_up(crm_run):
    want: dict[tuple, dict] = {}
    for r in expected(Sandbox(crm_run / "sandbox")).values():
        if not r["is_closed"]:
            continue
        key = (r["crm"], r["close_date"].replace(day=1), r["currency"])
        row = want.setdefault(key, {"won_deals": 0, "won_amount": Decimal("0.00"), "lost_deals": 0,
                                    "invoiced_amount": Decimal("0.00"), "paid_amount": Decimal("0.00"),
                                    "paid_amount_home": Decimal("0.00")})
        row["won_deals" if r["is_won"] else "lost_deals"] += 1
        row["won_amount"] += r["deal_amount"] if r["is_won"] else 0
        row["invoiced_amount"] += r["invoiced_amount"]
        row["paid_amount"] += r["paid_amount"]
        row["paid_amount_home"] += r["paid_amount_home"] or 0
    con = duckdb.connect(str(crm_run / "warehouse.duckdb"), read_only=True)
    try:
        cur = con.execute("select * from marts.rpt_pipeline_to_cash_monthly")
        cols = [d[0] for d in cur.description]
        got = {(r["crm"], r["month"], r["currency"]): r for r in (dict(zip(cols, x)) for x in cur.fetchall())}
    finally:
        con.close()
    assert set(got) == set(want) and len(want) > 10
    for key, row in want.items():
        assert {k: got[key][k] for k in row} == row, key

