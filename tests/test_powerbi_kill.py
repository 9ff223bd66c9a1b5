"""Ten kill -9s of the Power BI publisher at random moments (often between a table's DELETE and its
last POST), then a clean run: one dataset, every table holding exactly the marts' rows."""
from __future__ import annotations

from collections import Counter
from decimal import Decimal

import duckdb

from bi_fixtures import build_bi_marts, execute
from conftest import make_settings
from finance_pipeline.platforms.powerbi.emulator import PowerBIEmulator
from finance_pipeline.platforms.powerbi.publish import wire_rows
from finance_pipeline.publish.bi import load_marts
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from publish_kill import kill_trials, pending_keys


def _normal(row: dict) -> tuple:
    return tuple(sorted((k, format(Decimal(str(v)), "f") if isinstance(v, (Decimal, float)) and not isinstance(
        v, bool) else v) for k, v in row.items()))


def test_kill_9_at_random_moments_then_rerun(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    build_bi_marts(settings.warehouse_path, n_invoices=150, n_payouts=200)
    def current() -> dict[str, Counter]:
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            return {t.name: Counter(_normal(r) for r in wire_rows(t)) for t in load_marts(con)}
        finally:
            con.close()

    marts = current()
    running = serve(PowerBIEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    emulator = running.emulator
    # every reload (even of the one table edited between trials: 8 posts) outlasts the longest
    # kill delay, whatever the machine's speed, so kills land while the publisher is running
    emulator.post_delay_s = 0.25

    seen: dict[str, Counter] = {t: Counter(c) for t, c in marts.items()}  # every row any version had

    def never_more_than_the_marts(trial: int) -> None:
        datasets = emulator.datasets()
        assert len(datasets) <= 1, trial
        for dataset in datasets:
            for table, want in marts.items():
                got = Counter(_normal(r) for r in emulator.rows(dataset["id"], table))
                assert sum(got.values()) <= sum(want.values()), (trial, table)  # never more rows than the mart
                assert not got - seen[table], (trial, table)  # nothing duplicated, nothing foreign
        # the marts move on between crashes (a payout edited): every trial has a table to reload
        execute(settings.warehouse_path, "UPDATE marts.fct_payouts SET note = ? WHERE payout_id = 90000002",
                [f"edited after kill {trial}"])
        marts.update(current())
        for table, rows in marts.items():
            seen[table] |= rows

    try:
        report = kill_trials(tmp_path, settings, running, "powerbi", "finance_pipeline.platforms.powerbi.publish",
                             trials=10, min_delay=0.0, max_delay=1.5, seed=5,
                             progress=lambda: emulator.counters["requests"],
                             extra_env={"POWERBI_ROWS_PER_POST": "25"}, after_kill=never_more_than_the_marts)
        assert report.killed_running >= 7, report
        assert report.pending_seen >= 3, report
        final = report.final
        assert final["ok"] and final["mismatch_count"] == 0, final
        (dataset,) = emulator.datasets()
        for table, want in marts.items():
            assert Counter(_normal(r) for r in emulator.rows(dataset["id"], table)) == want, table
        assert pending_keys(settings.warehouse_path, "powerbi") == []
        assert emulator.stats()["datasets_created"] == 1
        assert emulator.credentials()["client_secret"] not in report.logs()
    finally:
        running.stop()
