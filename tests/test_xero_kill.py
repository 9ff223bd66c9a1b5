"""A real kill -9 of the publisher mid-run, twice, then a clean re-run: no duplicate invoice in Xero,
and what Xero holds equals the marts.

The emulator runs in this test process; the publisher runs as `python -m
finance_pipeline.platforms.xero.publish --data-dir …` and finds the emulator through
`data/sandbox/endpoints.json` (as any sandbox process does).  The emulator answers each write
0.4 s after committing it, so polling its created-invoice count and killing as soon as it moves
lands the SIGKILL in the worst gap: Xero has the batch, the ledger still says pending.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx

from conftest import make_settings
from finance_pipeline.platforms.xero.client import TOKEN_FILE
from finance_pipeline.sandbox import runtime
from finance_pipeline.settings import PROJECT_ROOT
from xero_fixtures import assert_xero_matches_marts, build_marts, start_xero


def _pending(warehouse: Path) -> list[str]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT business_key FROM ops.publish_ledger WHERE destination = 'xero' "
                                          "AND object_type = 'invoice' AND status = 'pending'").fetchall()]
    finally:
        con.close()


def test_kill_9_mid_publish_then_rerun(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_marts(settings.warehouse_path, n_invoices=400)
    expected = made["invoices"] - made["voided"]
    running = start_xero(settings)
    emulator = running.emulator
    emulator.write_delay_s = 0.4
    runtime.write_endpoints(settings, {"xero": running})

    env = {**os.environ, "FINANCE_MODE": "sandbox", "FINANCE_SANDBOX_TIME_SCALE": str(settings.time_scale),
           "FINANCE_HTTP_TIMEOUT_S": "5", "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("FINANCE_DATA_DIR", None)
    cmd = [sys.executable, "-m", "finance_pipeline.platforms.xero.publish", "--data-dir", str(settings.data_dir)]
    outputs: list[Path] = []

    def start(n: int) -> subprocess.Popen:
        out, err = tmp_path / f"run{n}.out", tmp_path / f"run{n}.err"
        outputs.extend([out, err])
        return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out.open("wb"), stderr=err.open("wb"))

    def created() -> int:
        return httpx.get(f"{running.url}/__sandbox/stats", timeout=5).json()["invoices_created"]

    def kill_when(proc: subprocess.Popen, at_least: int) -> int:
        deadline = time.monotonic() + 90
        while (count := created()) < at_least:
            assert proc.poll() is None, f"publisher ended before the kill: {outputs[-1].read_text()[-2000:]}"
            assert time.monotonic() < deadline, "publisher made no progress"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        return count

    try:
        # 1: killed while the first invoice batch is committed in Xero but not yet answered
        at_kill = kill_when(start(1), 1)
        assert 0 < at_kill < expected
        pending = _pending(settings.warehouse_path)
        assert pending, "the killed run left no pending keys"
        in_xero = {d["InvoiceNumber"] for d in emulator.invoices()}
        assert set(pending) <= in_xero  # committed remotely, unknown to the ledger: the dangerous case

        # 2: the next run recovers those by look-up, gets further, and is killed again
        second_kill = kill_when(start(2), created() + 100)
        assert at_kill < second_kill < expected
        assert _pending(settings.warehouse_path)

        # 3: runs to the end
        emulator.write_delay_s = 0.0
        proc = start(3)
        assert proc.wait(timeout=120) == 0, (tmp_path / "run3.err").read_text()[-3000:]
        summary = json.loads((tmp_path / "run3.out").read_text().strip().splitlines()[-1])
        assert summary["ok"] and summary["mismatch_count"] == 0, summary
        invoice_counts = summary["counts"]["invoice"]
        assert invoice_counts["recovered"] >= 1, invoice_counts
        assert invoice_counts["created"] == expected - second_kill

        stats = emulator.stats()
        assert stats["invoices"] == stats["invoices_created"] == expected  # never a second create
        assert stats["invoices_updated"] == 0  # recovered records were equal: nothing re-sent
        assert_xero_matches_marts(emulator, settings.warehouse_path)
        assert _pending(settings.warehouse_path) == []

        # secrets never reached the publishers' output
        creds = emulator.credentials()
        token = json.loads((settings.secrets_dir / TOKEN_FILE).read_text())
        logs = "".join(p.read_text() for p in outputs)
        assert "HTTP Request" in logs or "xero publish" in logs
        for secret in (creds["client_secret"], creds["refresh_token"], token["refresh_token"], token["access_token"]):
            assert secret not in logs
    finally:
        running.stop()


def test_twelve_random_kills_with_payments_and_payouts(tmp_path):
    """kill -9 at twelve random points of runs that post contacts, invoices, payments, payout summaries
    and their bank payments (batches of 50), then a clean run."""
    from publish_kill import run_to_end, run_trials
    from xero_fixtures import build_payments, build_payout_marts

    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_marts(settings.warehouse_path, n_invoices=500, n_customers=60)
    build_payments(settings.warehouse_path)
    payouts = build_payout_marts(settings.warehouse_path)
    running = start_xero(settings)
    emulator = running.emulator
    emulator.write_delay_s = 0.3  # each batch committed 0.3 s before Xero answers: the kill's favourite gap
    runtime.write_endpoints(settings, {"xero": running})

    def writes() -> int:
        stats = emulator.stats()
        return sum(stats[k] for k in ("invoices_created", "invoices_updated", "contacts_created", "payments_created",
                                      "payments_deleted"))

    try:
        kills = run_trials("xero", settings, tmp_path, trials=12, writes=writes, max_wait_s=0.5, seed=7)
        assert sum(1 for _, w in kills if w > 0) >= 10
        numbers = [d["InvoiceNumber"] for d in emulator.invoices()]
        assert len(numbers) == len(set(numbers))  # never a duplicate, whatever the kill hit

        emulator.write_delay_s = 0.0
        summary = json.loads(run_to_end("xero", settings, tmp_path))
        assert summary["mismatch_count"] == 0, summary
        assert {e["key"] for e in summary["errors"]} == set(payouts["break"])
        stats = emulator.stats()
        positive = [n for n, a in payouts["postable"].items() if a > 0]
        assert stats["invoices_created"] == made["invoices"] - made["voided"] + len(positive)
        assert stats["credit_notes_created"] == len(payouts["negative"]) == stats["credit_notes"]
        assert stats["invoices_updated"] == 0 and stats["payments_deleted"] == 0
        assert_xero_matches_marts(emulator, settings.warehouse_path)
        refs = [p["Reference"] for p in emulator.payments() if p["Status"] == "AUTHORISED"]
        assert len(refs) == len(set(refs))  # one payment per charge and per payout
        docs = {d["InvoiceNumber"]: d for d in emulator.invoices()}
        for number in positive:
            assert docs[number]["AmountPaid"] == payouts["postable"][number] == docs[number]["Total"]
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            assert con.execute("SELECT COUNT(*) FROM ops.publish_ledger WHERE status = 'pending'").fetchone()[0] == 0
        finally:
            con.close()
    finally:
        running.stop()
