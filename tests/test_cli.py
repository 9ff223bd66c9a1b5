"""The README's main command, as a user runs it: `finance-pipeline run` on a fresh data dir."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from finance_pipeline.platforms import registry

BIN = Path(sys.executable).parent


def _cli(*args, env=None, timeout=900):
    full_env = {**os.environ, "FINANCE_SANDBOX_TIME_SCALE": "30", **(env or {})}
    full_env.pop("FINANCE_DATA_DIR", None)
    return subprocess.run([str(BIN / "finance-pipeline"), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


@pytest.mark.slow
def test_main_job_runs_and_prints_the_summary(tmp_path):
    out = _cli("--data-dir", str(tmp_path), "run", "--size", "2000")
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    for expected in ("Orders and net sales per channel", "shopify", "Outstanding trade balances",
                     "oldest bucket", "P&L for December 2025", "Payouts reconciled", "Warehouse:"):
        assert expected in text, text
    assert str(tmp_path / "warehouse.duckdb") in text
    # every channel that sold something is listed by name, the web stores and POS among them
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        selling = {c for (c,) in con.execute(
            "select distinct channel from marts.fct_orders where not is_void").fetchall()}
    finally:
        con.close()
    assert {"shopify", "woocommerce", "magento", "bigcommerce", "square", "lightspeed"} <= selling
    listed = text.split("Orders and net sales per channel:")[1].split("\n\n")[0]
    assert {line.split()[0] for line in listed.strip().splitlines()} == selling, listed
    # every destination the sandbox switches on published, and each read back equal to the marts
    from finance_pipeline.publish.destinations import destination_names

    published = text.split("Published (each destination read back against the marts):")[1]
    published = [line.strip() for line in published.split("Sandbox emulators served:")[0].splitlines() if line.strip()]
    assert len(published) == len(destination_names()), published
    assert all(line.endswith("read-back clean") for line in published), published
    assert "(0 over its rate limit)" in text and "over its rate limit)" in text.split("Sandbox emulators served:")[1]
    served = text.split("Sandbox emulators served:")[1].split("\n")[0]
    refused = [part.strip() for part in served.split(",") if "(0 over" not in part]
    assert refused == [], refused  # no emulator refused a request for its rate limit
    # the clock moves only when told; a second run after advancing picks up the new day
    adv = _cli("--data-dir", str(tmp_path), "sandbox", "advance", "--hours", "24")
    assert adv.returncode == 0 and "2026-01-02T00:00:00+00:00" in adv.stdout
    again = _cli("--data-dir", str(tmp_path), "run", "--no-publish")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Finance summary as of 2026-01-02" in again.stdout
    # dbt docs generate against the same warehouse (the README's docs command, without serving)
    docs = _cli("--data-dir", str(tmp_path), "docs", "--no-serve")
    assert docs.returncode == 0, docs.stdout + docs.stderr
    catalog = (Path(__file__).parent.parent / "dbt_project" / "target" / "docs" / "catalog.json").read_text()
    assert "rpt_payout_reconciliation" in catalog and "fct_invoices" in catalog


def test_live_mode_without_credentials_names_the_missing_setting(tmp_path):
    # live mode switches no source on by itself: the run asks for FINANCE_SOURCES
    out = _cli("--data-dir", str(tmp_path), "run", env={"FINANCE_MODE": "live"}, timeout=120)
    assert out.returncode == 2
    assert "FINANCE_SOURCES" in out.stderr and "shopify" in out.stderr and "Traceback" not in out.stderr
    # with a source switched on, its first missing credential is named, with how to fix it
    out = _cli("--data-dir", str(tmp_path), "run", env={"FINANCE_MODE": "live", "FINANCE_SOURCES": "shopify"},
               timeout=120)
    assert out.returncode == 2
    assert re.search(r"\bSHOPIFY_[A-Z_]+ is not set", out.stderr), out.stderr
    assert ".env" in out.stderr and "Traceback" not in out.stderr


def test_bad_setting_is_reported_clearly(tmp_path):
    out = _cli("--data-dir", str(tmp_path), "sandbox", "status", env={"FINANCE_SANDBOX_FAULT_RATE": "2"}, timeout=120)
    assert out.returncode == 2 and "FINANCE_SANDBOX_FAULT_RATE" in out.stderr


def test_sandbox_serve_prints_one_json_line_per_platform_and_cleans_up(tmp_path):
    import json
    import signal

    import httpx

    proc = subprocess.Popen([str(BIN / "finance-pipeline"), "--data-dir", str(tmp_path), "sandbox", "serve",
                             "--size", "2000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        entries = [json.loads(proc.stdout.readline()) for _ in registry.PLATFORMS]
        assert {e["platform"] for e in entries} == {p.name for p in registry.PLATFORMS}
        for e in entries:
            assert e["base_url"].startswith("http://127.0.0.1:")
            assert e["credentials"] or e["platform"] == "ecb", e  # the ECB's rates are public: no credential
            assert httpx.get(f"{e['base_url']}/__sandbox/health").json()["ok"]
        shopify = next(e for e in entries if e["platform"] == "shopify")
        r = httpx.get(f"{shopify['base_url']}/admin/api/2026-10/orders/count.json", params={"status": "any"},
                      headers={"X-Shopify-Access-Token": shopify["credentials"]["access_token"]})
        assert r.status_code == 200 and r.json()["count"] > 1000
        assert (tmp_path / "sandbox" / "endpoints.json").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert not (tmp_path / "sandbox" / "endpoints.json").exists()
