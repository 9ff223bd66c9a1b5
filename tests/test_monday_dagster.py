"""The monday.com and Looker Studio publish assets in Dagster: off / dry run / on, and the read-back
asset check — passing after a publish, failing when the board was changed behind the ledger's back."""
from __future__ import annotations

from dagster import AssetKey, DagsterInstance, materialize

from bi_fixtures import build_bi_marts
from conftest import make_settings
from finance_pipeline.defs.publish import READ_BACK_CHECK, looker_studio_marts, monday_trade_invoices
from finance_pipeline.platforms.looker_studio.endpoint import LookerStudioEndpoint
from finance_pipeline.platforms.monday.emulator import MondayEmulator
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from pipeline_helpers import pipeline_env

ASSETS = [monday_trade_invoices, looker_studio_marts]


def test_assets_publish_and_their_read_back_checks(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    build_bi_marts(settings.warehouse_path, n_invoices=60, n_payouts=40)
    sandbox = Sandbox(settings.sandbox_dir)
    running = {"monday": serve(MondayEmulator(sandbox, EmulatorConfig(time_scale=30))),
               "looker_studio": serve(LookerStudioEndpoint(sandbox, EmulatorConfig(time_scale=30)))}
    runtime.write_endpoints(settings, running)
    monday = running["monday"].emulator

    def _run(data_dir, **env):
        with pipeline_env(data_dir, **env), DagsterInstance.ephemeral() as instance:
            return materialize(ASSETS, instance=instance, raise_on_error=True)

    try:
        off = _run(tmp_path, FINANCE_DESTINATIONS="xero")
        assert monday.counters["requests"] == 0 and not (settings.data_dir / "looker_studio").exists()
        assert {e.check_name for e in off.get_asset_check_evaluations()} == {READ_BACK_CHECK}

        dry = _run(tmp_path, FINANCE_DESTINATIONS="monday,looker_studio", FINANCE_PUBLISH_DRY_RUN="1")
        meta = {m.asset_key: m.materialization.metadata for m in dry.get_asset_materialization_events()}
        assert meta[AssetKey(["publish", "monday_trade_invoices"])]["dry_run"].value["would_send"]["item.create"] == 60
        assert meta[AssetKey(["publish", "looker_studio_marts"])]["dry_run"].value["would_send"]["table.create"] == 3
        assert monday.boards() == [] and not (settings.data_dir / "looker_studio" / "manifest.json").exists()

        done = _run(tmp_path, FINANCE_DESTINATIONS="monday,looker_studio")
        checks = {e.asset_key.path[-1]: e for e in done.get_asset_check_evaluations()}
        assert set(checks) == {"monday_trade_invoices", "looker_studio_marts"}
        assert all(c.passed for c in checks.values()), {k: c.metadata for k, c in checks.items()}
        assert checks["monday_trade_invoices"].metadata["read_back"].value == 60

        # someone deletes an item on the board: the ledger still says done, the read-back says no
        with monday.state.tx() as con:
            con.execute("DELETE FROM items WHERE name = 'INV-1004'")
        again = _run(tmp_path, FINANCE_DESTINATIONS="monday")
        (check,) = [e for e in again.get_asset_check_evaluations() if e.asset_key.path[-1] == "monday_trade_invoices"]
        assert not check.passed and check.metadata["mismatches"].value == 1
    finally:
        for r in running.values():
            r.stop()
