"""Ten kill -9s of the Tableau publisher at random moments (building extracts, mid chunked upload,
publishing), then a clean run: one data source per mart, each holding exactly the mart."""
from __future__ import annotations

from collections import Counter

from bi_fixtures import build_bi_marts, execute
from conftest import make_settings
from finance_pipeline.platforms.tableau.emulator import TableauEmulator
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from publish_kill import kill_trials, pending_keys


def test_kill_9_at_random_moments_then_rerun(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_bi_marts(settings.warehouse_path, n_invoices=150, n_payouts=200)
    running = serve(TableauEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    emulator = running.emulator
    # every publish answer is held longer than the longest kill delay, whatever the machine's speed,
    # so each trial (which always has the edited payouts to publish) is killed while running
    emulator.publish_delay_s = 2.5

    def one_per_name(trial: int) -> None:
        names = Counter(d["name"] for d in emulator.datasources())
        assert all(n == 1 for n in names.values()), (trial, names)
        # the marts move on between crashes (a payout edited): every trial has something to publish
        execute(settings.warehouse_path, "UPDATE marts.fct_payouts SET note = ? WHERE payout_id = 90000001",
                [f"edited after kill {trial}"])

    try:
        report = kill_trials(tmp_path, settings, running, "tableau", "finance_pipeline.platforms.tableau.publish",
                             trials=10, min_delay=0.0, max_delay=2.0, seed=6, after_kill=one_per_name,
                             progress=lambda: emulator.counters["requests"],
                             extra_env={"TABLEAU_CHUNK_THRESHOLD_BYTES": "30000", "TABLEAU_CHUNK_SIZE_BYTES": "8192"})
        assert report.killed_running >= 7 and report.pending_seen >= 3, report
        final = report.final
        assert final["ok"] and final["mismatch_count"] == 0, final
        assert final["read_back"] == sum(made["tables"].values())
        assert sorted(d["name"] for d in emulator.datasources()) == sorted(made["tables"])
        assert pending_keys(settings.warehouse_path, "tableau") == []
        assert final["counts"]["datasource"]["updated"] >= 1  # the last edit was published in place
        assert emulator.credentials()["pat_secret"] not in report.logs()
    finally:
        running.stop()
