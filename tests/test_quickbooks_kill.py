"""Twelve kill -9s of the QuickBooks publisher at random points, then a clean run: no duplicate
customer, invoice or payment, and what QuickBooks holds equals the marts."""
from __future__ import annotations

import json

import duckdb

from conftest import make_settings
from finance_pipeline.platforms.quickbooks.client import TOKEN_FILE
from finance_pipeline.sandbox import runtime
from publish_kill import run_to_end, run_trials
from quickbooks_fixtures import assert_qbo_matches_marts, start_qbo
from xero_fixtures import build_marts, build_payments


def test_kill_9_at_random_points_then_rerun(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_marts(settings.warehouse_path, n_invoices=240)  # batches of 30: enough work for 12 kills
    build_payments(settings.warehouse_path)
    running = start_qbo(settings)
    emulator = running.emulator
    emulator.write_delay_s = 0.03  # widen the gap between QBO's commit and the publisher's ledger write
    runtime.write_endpoints(settings, {"quickbooks": running})

    def writes() -> int:
        c = emulator.store.counters()
        return sum(v for k, v in c.items() if k.endswith(("_created", "_updated", "_voided", "_deleted")))

    try:
        kills = run_trials("quickbooks", settings, tmp_path, trials=12, writes=writes, max_wait_s=0.8)
        assert sum(1 for _, w in kills if w > 0) >= 10
        # after every kill so far: never two records for one business key
        for entity, key in (("Invoice", "DocNumber"), ("Customer", "DisplayName"), ("Payment", "PaymentRefNum")):
            values = [d[key] for d in emulator.docs(entity)]
            assert len(values) == len(set(values)), entity

        emulator.write_delay_s = 0.0
        summary = json.loads(run_to_end("quickbooks", settings, tmp_path))
        assert summary["ok"] and summary["mismatch_count"] == 0, summary
        stats = emulator.stats()
        assert stats["invoices"] == stats["invoice_created"] == made["invoices"] - made["voided"]
        assert stats.get("invoice_updated", 0) == 0  # interrupted creates were found, never re-sent as updates
        assert stats["customers"] == stats["customer_created"]
        assert stats["payments"] == stats["payment_created"]
        assert_qbo_matches_marts(emulator, settings.warehouse_path)
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        pending = con.execute("SELECT COUNT(*) FROM ops.publish_ledger WHERE status <> 'done'").fetchone()[0]
        recovered = con.execute("SELECT COUNT(*) FROM ops.publish_log WHERE event = 'found'").fetchone()[0]
        con.close()
        assert pending == 0 and recovered >= 1
        # a further run changes nothing
        again = json.loads(run_to_end("quickbooks", settings, tmp_path))
        assert again["counts"]["invoice"]["created"] == 0 and again["counts"]["payment"]["created"] == 0
        # secrets never reached the publishers' output
        creds = emulator.credentials()
        token = json.loads((settings.secrets_dir / TOKEN_FILE).read_text())
        logs = "".join(p.read_text() for p in tmp_path.glob("*.err"))
        for secret in (creds["client_secret"], creds["refresh_token"], token["refresh_token"], token["access_token"]):
            assert secret not in logs
    finally:
        running.stop()
