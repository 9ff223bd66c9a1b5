"""The ECB rates in the marts: after the main job on a small world (Shopify + Stripe, whose trade
invoices are in EUR, USD and AUD, and the ECB feed), `fct_fx_rates` and `rpt_fx_exposure` equal the
Python oracle (sandbox/oracle_fx.py) to the last decimal, and `rpt_fx_rate_check` flags the
transactions whose platform rate strays from the ECB's beyond the tolerance."""
from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from finance_pipeline.sandbox.oracle_fx import expected
from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import row_differences, run_job, warehouse_rows

SOURCES = {"shopify", "stripe", "ecb"}
CHANNELS = {"shopify", "stripe"}


def rows(data: Path, sql: str) -> list[dict]:
    import duckdb

    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]
    finally:
        con.close()


@pytest.fixture(scope="module")
def fx_run(tmp_path_factory, small_world_dir) -> Path:
    data = tmp_path_factory.mktemp("fx-run")
    shutil.copytree(small_world_dir / "sandbox", data / "sandbox")
    run_job(data, job="hourly_sync", sources=SOURCES, http_timeout_s=10)
    return data


def test_fx_rates_equal_the_oracle(fx_run):
    want = expected(Sandbox(fx_run / "sandbox"), CHANNELS)["fct_fx_rates"]
    got = {(r["rate_date"], r["currency"]): r for r in rows(fx_run, "select * from marts.fct_fx_rates")}
    assert row_differences(want, got) == []
    assert {c for _, c in got} == {"EUR", "USD", "AUD"}
    # Christmas and Boxing Day carry the 24th's rates; the ECB's own GBP rate is the EUR row
    assert got[(date(2025, 12, 26), "USD")]["source_rate_date"] == date(2025, 12, 24)
    assert not got[(date(2025, 12, 26), "USD")]["is_published_day"]
    assert got[(date(2025, 12, 24), "EUR")]["gbp_per_unit"] == got[(date(2025, 12, 24), "EUR")]["gbp_per_eur"]
    assert all(isinstance(r["gbp_per_unit"], Decimal) for r in got.values())


def test_exposure_equals_the_oracle(fx_run):
    want = expected(Sandbox(fx_run / "sandbox"), CHANNELS)["rpt_fx_exposure"]
    got = {(r["as_of_date"], r["invoice_number"]): r for r in rows(fx_run, "select * from marts.rpt_fx_exposure")}
    assert row_differences(want, got) == []
    dates = {d for d, _ in got}
    assert date(2025, 6, 30) in dates and date(2026, 1, 1) in dates and len(dates) >= 12
    assert {r["currency"] for r in got.values()} == {"EUR", "USD", "AUD"}
    assert any(r["unrealised_fx_home"] > 0 for r in got.values()) and any(r["unrealised_fx_home"] < 0 for r in got.values())
    # today's open foreign receivables are the open foreign invoices of the AR detail, at their carrying amount
    today = {n: r["carrying_amount_home"] for (d, n), r in got.items() if d == date(2026, 1, 1)}
    detail = dict(warehouse_rows(fx_run / "warehouse.duckdb",
                                 "select invoice_number, gl_ar_balance_home from marts.rpt_ar_invoice_detail "
                                 "where currency <> 'GBP' and gl_ar_balance_home <> 0"))
    assert today == detail


def test_rate_check_flags_what_strays_beyond_the_tolerance(fx_run):
    checked = rows(fx_run, "select * from marts.rpt_fx_rate_check")
    assert len(checked) > 100 and {r["kind"] for r in checked} == {"order", "payment"}
    for r in checked:
        pct = abs(r["implied_gbp_per_unit"] - r["ecb_gbp_per_unit"]) * 100 / r["ecb_gbp_per_unit"]
        assert abs(pct - r["divergence_pct"]) <= Decimal("0.00005")
        assert r["is_divergent"] == (r["divergence_pct"] > Decimal("2.0"))
    assert sum(r["is_divergent"] for r in checked) < len(checked) / 20  # platforms convert near the day's rate
