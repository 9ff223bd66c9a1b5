"""Twelve kill -9s of the FreshBooks publisher at random points, then a clean run: no duplicate
client, invoice or payment (FreshBooks has no idempotency key: the look-up before re-posting is
what protects it), and what FreshBooks holds equals the marts."""
from __future__ import annotations

import json

import duckdb

from conftest import make_settings
from finance_pipeline.platforms.freshbooks.client import TOKEN_FILE
from finance_pipeline.sandbox import runtime
from freshbooks_fixtures import duplicates, start_fb
from publish_kill import run_to_end, run_trials
from xero_fixtures import build_marts, build_payments


def test_kill_9_at_random_points_then_rerun(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_marts(settings.warehouse_path, n_invoices=70)
    build_payments(settings.warehouse_path)
    running = start_fb(settings)
    emulator = running.emulator
    emulator.write_delay_s = 0.03  # widen the gap between FreshBooks' commit and the publisher's ledger write
    runtime.write_endpoints(settings, {"freshbooks": running})

    def writes() -> int:
        return sum(v for k, v in emulator.store.counters().items() if k.endswith("_writes"))

    try:
        kills = run_trials("freshbooks", settings, tmp_path, trials=12, writes=writes, max_wait_s=0.8)
        assert sum(1 for _, w in kills if w > 0) >= 10
        assert duplicates(emulator) == {"invoices": [], "clients": [], "payments": []}

        emulator.write_delay_s = 0.0
        summary = json.loads(run_to_end("freshbooks", settings, tmp_path))
        assert summary["ok"] and summary["mismatch_count"] == 0, summary
        assert duplicates(emulator) == {"invoices": [], "clients": [], "payments": []}
        invoices = [d for d in emulator.store.all("invoices") if d["vis_state"] == 0]
        assert len(invoices) == made["invoices"] - made["voided"]
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        pending = con.execute("SELECT COUNT(*) FROM ops.publish_ledger WHERE destination = 'freshbooks' "
                              "AND status <> 'done'").fetchone()[0]
        recovered = con.execute("SELECT COUNT(*) FROM ops.publish_log WHERE event = 'found'").fetchone()[0]
        con.close()
        assert pending == 0 and recovered >= 1
        again = json.loads(run_to_end("freshbooks", settings, tmp_path))
        assert again["counts"]["invoice"]["created"] == 0 and again["counts"]["payment"]["created"] == 0
        creds = emulator.credentials()
        token = json.loads((settings.secrets_dir / TOKEN_FILE).read_text())
        logs = "".join(p.read_text() for p in tmp_path.glob("*.err"))
        for secret in (creds["client_secret"], creds["refresh_token"], token["refresh_token"], token["access_token"]):
            assert secret not in logs
    finally:
        running.stop()
