"""Ten kill -9s of the Looker Studio snapshot publisher at random moments, the marts moving on between
kills: after every kill the endpoint serves one complete snapshot (every file of the manifest
present, each table's rows and money equal to one version of the mart); a final run converges."""
from __future__ import annotations

import json
from decimal import Decimal

import httpx

from bi_fixtures import build_bi_marts, execute, mart_count, mart_sum
from conftest import make_settings
from finance_pipeline.platforms.looker_studio.endpoint import LookerStudioEndpoint
from finance_pipeline.platforms.looker_studio.snapshot import read_manifest, snapshot_dir
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from publish_kill import kill_trials, pending_keys


def test_kill_9_at_random_moments_then_rerun(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    build_bi_marts(settings.warehouse_path, n_invoices=150, n_payouts=300)
    running = serve(LookerStudioEndpoint(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    headers = {"Authorization": f"Bearer {running.emulator.credentials()['token']}"}
    directory = snapshot_dir(settings.data_dir)
    totals_seen: set[Decimal] = {mart_sum(settings.warehouse_path, "fct_payouts", "amount")}

    def payouts_total() -> Decimal:
        r = httpx.post(f"{running.url}/connector/getData", headers=headers, timeout=30,
                       json={"configParams": {"table": "fct_payouts"}, "fields": [{"name": "amount"}]})
        assert r.status_code == 200, r.text
        rows = json.loads(r.content, parse_float=Decimal)["rows"]
        assert len(rows) == 300
        return sum((v["values"][0] for v in rows), Decimal(0))

    def one_whole_snapshot(trial: int) -> None:
        manifest = read_manifest(directory)
        for table in manifest["tables"].values():
            assert (directory / table["file"]).exists(), (trial, table["file"])
        if manifest["tables"]:
            assert payouts_total() in totals_seen, trial  # a version the mart really had, never a mix
        execute(settings.warehouse_path, "UPDATE marts.fct_payouts SET amount = amount + 1 WHERE payout_id = ?",
                [90_000_000 + trial])
        totals_seen.add(mart_sum(settings.warehouse_path, "fct_payouts", "amount"))

    try:
        report = kill_trials(tmp_path, settings, running, "looker_studio",
                             "finance_pipeline.platforms.looker_studio.publish", trials=10, min_delay=0.2,
                             max_delay=1.2, seed=3, after_kill=one_whole_snapshot)
        assert report.killed_running >= 5, report
        final = report.final
        assert final["ok"] and final["mismatch_count"] == 0, final
        assert payouts_total() == mart_sum(settings.warehouse_path, "fct_payouts", "amount")
        manifest = read_manifest(directory)
        assert {t: manifest["tables"][t]["rows"] for t in manifest["tables"]} == {
            t: mart_count(settings.warehouse_path, t) for t in ("fct_invoices", "fct_invoice_lines", "fct_payouts")}
        referenced = {t["file"] for t in manifest["tables"].values()}
        assert len(list(directory.glob("*.parquet"))) <= 2 * len(referenced)  # old versions collected
        assert not list(directory.glob(".*.tmp"))
        assert pending_keys(settings.warehouse_path, "looker_studio") == []
    finally:
        running.stop()
