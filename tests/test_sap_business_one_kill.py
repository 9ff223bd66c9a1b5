"""Twelve kill -9s of the SAP Business One publisher at random points after its first write, then a
clean run: no business partner or customer reference twice, nothing left pending, interrupted writes
found by NumAtCard / CardCode, and what B1 holds equals the marts."""
from __future__ import annotations

import json

import duckdb

from conftest import make_settings
from finance_pipeline.sandbox import runtime
from publish_kill import run_to_end, run_trials
from sap_business_one_fixtures import assert_b1_matches_marts, start_b1
from xero_fixtures import build_marts


def test_kill_9_at_random_points_then_rerun(tmp_path, small_world_dir):
    import shutil

    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    settings = make_settings(tmp_path)
    made = build_marts(settings.warehouse_path, n_invoices=60, n_customers=16)
    running = start_b1(settings)
    emulator = running.emulator
    emulator.write_delay_s = 0.03  # widen the gap between B1's commit and the publisher's ledger write
    runtime.write_endpoints(settings, {"sap_business_one": running})

    def writes() -> int:
        c = emulator.store.counters()
        return sum(v for k, v in c.items() if k.endswith(("_created", "_updated", "_cancelled")))

    try:
        kills = run_trials("sap_business_one", settings, tmp_path, trials=12, writes=writes, max_wait_s=0.8)
        assert sum(1 for _, w in kills if w > 0) >= 10
        refs = [o["NumAtCard"] for o in emulator.store.orders()]
        assert len(refs) == len(set(refs))

        emulator.write_delay_s = 0.0
        summary = json.loads(run_to_end("sap_business_one", settings, tmp_path))
        assert summary["ok"] and summary["mismatch_count"] == 0, summary
        counters = emulator.store.counters()
        assert len(emulator.store.orders()) == counters["orders_created"] == made["invoices"] - made["voided"]
        assert counters.get("orders_updated", 0) == 0  # interrupted creates were found, never re-sent
        assert len(emulator.store.partners()) == counters["partners_created"] == made["customers"]
        assert_b1_matches_marts(emulator, settings.warehouse_path)
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        pending = con.execute("SELECT COUNT(*) FROM ops.publish_ledger WHERE status <> 'done'").fetchone()[0]
        found = con.execute("SELECT COUNT(*) FROM ops.publish_log WHERE event = 'found'").fetchone()[0]
        con.close()
        assert pending == 0 and found >= 1  # at least one interrupted write was found by its reference
        again = json.loads(run_to_end("sap_business_one", settings, tmp_path))
        assert again["counts"]["order"]["created"] == 0 and again["counts"]["partner"]["created"] == 0
        logs = "".join(p.read_text() for p in tmp_path.glob("*.err"))
        assert emulator.password not in logs
    finally:
        running.stop()
