"""Ten kill -9s of the monday.com publisher at random moments (often between a batch's mutations and the
ledger's answer), the marts moving on between kills, then a clean run: one board, one item per
invoice, equal to the marts, no pending keys."""
from __future__ import annotations

from collections import Counter
from decimal import Decimal

import duckdb

from conftest import make_settings
from finance_pipeline.platforms.monday.emulator import MondayEmulator
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from publish_kill import kill_trials, pending_keys
from xero_fixtures import build_marts


def test_kill_9_at_random_moments_then_rerun(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    build_marts(settings.warehouse_path, n_invoices=300, n_customers=30)
    running = serve(MondayEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    em = running.emulator
    em.post_delay_s = 0.05  # every batch answer arrives a little after its commit: kills land in between

    def no_duplicates(trial: int) -> None:
        boards = em.boards()
        assert len(boards) <= 1, trial
        if boards:
            names = Counter(i["name"] for i in em.items(boards[0]["id"]))
            assert not names or max(names.values()) == 1, (trial, names.most_common(3))
        con = duckdb.connect(str(settings.warehouse_path))
        try:  # the marts move on: an invoice gets paid after each kill
            con.execute("UPDATE marts.fct_invoices SET open_amount = 0, paid_amount = total_amount, status = 'paid' "
                        "WHERE invoice_number = ?", [f"INV-{1100 + trial}"])
        finally:
            con.close()

    def writes() -> int:  # kill once a trial's first mutation has landed
        counters = em.state.counters()
        return counters.get("items_created", 0) + counters.get("items_changed", 0)

    try:
        report = kill_trials(tmp_path, settings, running, "monday", "finance_pipeline.platforms.monday.publish",
                             trials=10, min_delay=0.0, max_delay=0.5, seed=9,
                             progress=writes, extra_env={"MONDAY_BATCH": "10"},
                             after_kill=no_duplicates)
        assert report.killed_running >= 7, report
        assert report.pending_seen >= 2, report
        final = report.final
        assert final["ok"] and final["mismatch_count"] == 0, final
        (board,) = em.boards()
        items = {i["name"]: i["values"] for i in em.items(board["id"])}
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            rows = con.execute("SELECT invoice_number, total_amount, open_amount FROM marts.fct_invoices").fetchall()
        finally:
            con.close()
        assert len(items) == len(rows) == len(em.items(board["id"]))
        for number, total, open_amount in rows:
            assert Decimal(items[number]["total"]) == total and Decimal(items[number]["open_amount"]) == open_amount
        assert items["INV-1105"]["status"] == "Paid"
        assert pending_keys(settings.warehouse_path, "monday") == []
        assert em.stats()["boards_created"] == 1
        assert em.credentials()["api_token"] not in report.logs()
    finally:
        running.stop()
