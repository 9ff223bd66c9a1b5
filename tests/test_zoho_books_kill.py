"""Twelve kill -9s of the Zoho Books publisher at random points after a write landed, then a clean
run: never two invoices, contacts or payments for one business key, and what Zoho Books holds
equals the marts; a further run writes nothing."""
from __future__ import annotations

import json

import duckdb

from finance_pipeline.sandbox import runtime
from publish_kill import run_to_end, run_trials
from xero_fixtures import build_marts, build_payments
from zoho_books_fixtures import assert_no_duplicates, assert_zoho_matches_marts, start_zoho, writes, zoho_settings


def test_kill_9_at_random_points_then_rerun(tmp_path, small_world_dir):
    settings = zoho_settings(tmp_path, small_world_dir)
    made = build_marts(settings.warehouse_path, n_invoices=60, n_customers=15)
    build_payments(settings.warehouse_path)
    running = start_zoho(settings)
    emulator = running.emulator
    emulator.write_delay_s = 0.03  # widen the gap between Zoho's commit and the publisher's ledger write
    try:
        kills = run_trials("zoho_books", settings, tmp_path, trials=12, writes=lambda: writes(emulator),
                           max_wait_s=0.8)
        assert sum(1 for _, w in kills if w > 0) >= 10
        assert_no_duplicates(emulator)

        emulator.write_delay_s = 0.0
        summary = json.loads(run_to_end("zoho_books", settings, tmp_path))
        assert summary["ok"] and summary["mismatch_count"] == 0, summary
        stats = emulator.stats()
        assert stats["invoices"] == stats["invoice_created"] == made["invoices"] - made["voided"]
        assert stats.get("invoice_updated", 0) == 0  # interrupted creates were found, never re-sent as updates
        assert stats["payments"] == stats["payment_created"]
        assert_no_duplicates(emulator)
        assert_zoho_matches_marts(emulator, settings.warehouse_path)
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        pending = con.execute("SELECT COUNT(*) FROM ops.publish_ledger WHERE status <> 'done'").fetchone()[0]
        recovered = con.execute("SELECT COUNT(*) FROM ops.publish_log WHERE event = 'found'").fetchone()[0]
        con.close()
        assert pending == 0 and recovered >= 1
        again = json.loads(run_to_end("zoho_books", settings, tmp_path))
        assert again["counts"]["invoice"]["created"] == 0 and again["counts"]["payment"]["created"] == 0
        creds = emulator.credentials()
        logs = "".join(p.read_text() for p in tmp_path.glob("*.err"))
        for secret in (creds["client_secret"], creds["refresh_token"]):
            assert secret not in logs
    finally:
        running.stop()
        runtime.stop_emulators()
