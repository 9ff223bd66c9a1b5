"""The finance report: the Dagster asset (part of the daily close) writes it under data/reports/; a
headless Chromium opens the file (no server), finds every chart drawn and the key figures equal to
the marts, and saves a screenshot beside the report.  `finance-pipeline report` writes the same
page from the shell."""
from __future__ import annotations

import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finance_pipeline.report import money
from tests.pipeline_helpers import pipeline_env, run_job

CHARTS = ["chart-pnl", "chart-ar-aging", "chart-tax", "chart-trends", "chart-payouts"]


def _browser() -> str:
    """A Chromium for Playwright: FINANCE_CHROMIUM, the system's (Debian package `chromium`), or
    one Playwright installed itself.  Skips, saying why, only when none can be had."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright)")
    candidates = [os.environ.get("FINANCE_CHROMIUM")] + [shutil.which(n) for n in ("chromium", "chromium-browser",
                                                                                   "google-chrome")]
    for c in candidates:
        if c and Path(c).exists():
            return c
    with sync_playwright() as p:
        bundled = p.chromium.executable_path
    if bundled and Path(bundled).exists():
        return bundled
    installed = _install_system_chromium()
    if installed:
        return installed
    pytest.skip("no headless Chromium: install Debian's `chromium` package or set FINANCE_CHROMIUM")


def _install_system_chromium() -> str | None:
    """On a Debian-like machine where we are root (CI), install the distribution's Chromium."""
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode != 0:
            return None
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def closed(small_world_dir, tmp_path_factory) -> Path:
    """The marts of the hourly job, then the report asset materialized by Dagster as the daily close
    does after them (the publishers of the daily close are not needed here)."""
    from dagster import DagsterInstance, materialize

    from finance_pipeline.defs.report import finance_report

    data = tmp_path_factory.mktemp("report")
    shutil.copytree(small_world_dir / "sandbox", data / "sandbox")
    run_job(data, job="hourly_sync")
    with pipeline_env(data), DagsterInstance.ephemeral() as instance:
        result = materialize([finance_report], instance=instance)
    assert result.success
    return data


def _one(data: Path, sql: str):
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchone()
    finally:
        con.close()


def test_the_report_asset_writes_a_page_that_renders_in_a_browser(closed):
    executable = _browser()
    from playwright.sync_api import sync_playwright

    reports = closed / "reports"
    as_of = _one(closed, "select max(as_of_date) from marts.rpt_ar_invoice_detail")[0]
    page_path = reports / f"finance-report-{as_of.isoformat()}.html"
    assert page_path.exists() and (reports / "finance-report.html").exists()
    html = page_path.read_text()
    assert "<script" in html and "cdn.plot.ly" not in html.split("</head>")[1]  # plotly.js is inlined, no network

    ar_open, overdue = _one(closed, "select sum(open_amount_home), sum(overdue_amount_home) from marts.rpt_outstanding_balances")
    period = _one(closed, f"select max(period) from marts.rpt_tax_obligations where period_start <= '{as_of}'")[0]
    tax_owed = _one(closed, f"select sum(net_owed_home) from marts.rpt_tax_obligations where period = '{period}'")[0]
    payouts, breaks = _one(closed, """select count(*), count(*) filter (where reconciliation_status <> 'matched')
                                      from marts.rpt_payout_reconciliation""")
    shot = reports / "finance-report.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(page_path.as_uri())
            for chart in CHARTS:
                page.wait_for_selector(f"#{chart} .main-svg", timeout=20_000)
            drawn = page.eval_on_selector_all(".js-plotly-plot", "els => els.map(e => [e.id, e.data.length])")
            figures = {k: page.inner_text(f'[data-figure="{k}"]') for k in
                       ("as_of", "ar_open_home", "tax_owed_home", "payout_exceptions", "gl_status")}
            bars = page.eval_on_selector_all("#chart-pnl .point path", "els => els.length")
            tables = page.eval_on_selector_all("table", "els => els.map(e => [e.id, e.rows.length])")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert {d[0] for d in drawn} == set(CHARTS) and all(n > 0 for _, n in drawn), drawn
    assert bars >= 12  # a bar per month and channel
    assert figures == {
        "as_of": as_of.isoformat(), "ar_open_home": money(Decimal(ar_open)), "tax_owed_home": money(Decimal(tax_owed)),
        "payout_exceptions": f"{breaks} of {payouts}", "gl_status": "balanced",
    }
    assert overdue > 0 and Decimal(ar_open) > 0
    rows = dict(tables)
    assert rows["table-pnl"] > 12 and rows["table-ar"] > 1 and rows["table-tax"] > 5
    assert shot.exists() and shot.stat().st_size > 50_000


def test_report_command_writes_the_page(closed, tmp_path, capsys):
    from finance_pipeline.cli import main

    with pipeline_env(closed):
        rc = main(["--data-dir", str(closed), "report", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0, out
    pages = list((tmp_path / "out").glob("finance-report-*.html"))
    assert len(pages) == 1 and pages[0].stat().st_size > 1_000_000  # plotly.js inlined
    assert "finance report as of" in out and "owed to us £" in out and "ledger balanced" in out


def test_report_command_says_when_there_is_no_warehouse(tmp_path, capsys):
    from finance_pipeline.cli import main

    with pipeline_env(tmp_path):
        rc = main(["--data-dir", str(tmp_path), "report"])
    assert rc == 1
    assert "run `finance-pipeline run` first" in capsys.readouterr().err


def test_the_report_is_a_dagster_asset_of_the_daily_close_only():
    from dagster import AssetKey

    from finance_pipeline.definitions import defs

    key = AssetKey(["reports", "finance_report"])
    graph = defs.resolve_asset_graph()
    assert graph.get(key).group_name == "report"
    assert AssetKey(["marts", "fct_gl_entries"]) in graph.get(key).parent_keys
    assert key in defs.resolve_job_def("daily_close").asset_layer.selected_asset_keys
    assert key not in defs.resolve_job_def("hourly_sync").asset_layer.selected_asset_keys
