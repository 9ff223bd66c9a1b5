"""The NetSuite, Power BI and Tableau publish assets in Dagster: switched on by FINANCE_DESTINATIONS,
dry run by FINANCE_PUBLISH_DRY_RUN, and the read-back asset check passing after a real publish."""
from __future__ import annotations

from dagster import AssetKey, DagsterInstance, materialize

from bi_fixtures import build_bi_marts
from conftest import make_settings
from finance_pipeline.defs.publish import READ_BACK_CHECK, netsuite_trade, powerbi_marts, tableau_marts
from finance_pipeline.platforms.netsuite.emulator import NetSuiteEmulator
from finance_pipeline.platforms.powerbi.emulator import PowerBIEmulator
from finance_pipeline.platforms.tableau.emulator import TableauEmulator
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from pipeline_helpers import pipeline_env

ASSETS = [netsuite_trade, powerbi_marts, tableau_marts]


def _run(data_dir, **env):
    with pipeline_env(data_dir, **env):
        with DagsterInstance.ephemeral() as instance:
            return materialize(ASSETS, instance=instance, raise_on_error=True)


def test_assets_publish_and_their_read_back_checks_pass(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    build_bi_marts(settings.warehouse_path, n_invoices=60, n_payouts=40)
    sandbox = Sandbox(settings.sandbox_dir)
    running = {name: serve(cls(sandbox, EmulatorConfig(time_scale=30))) for name, cls in
               (("netsuite", NetSuiteEmulator), ("powerbi", PowerBIEmulator), ("tableau", TableauEmulator))}
    runtime.write_endpoints(settings, running)
    try:
        # switched off: nothing is sent, the checks say why they passed
        off = _run(tmp_path, FINANCE_DESTINATIONS="xero")
        assert all(r.emulator.counters["requests"] == 0 for r in running.values())
        assert {e.check_name for e in off.get_asset_check_evaluations()} == {READ_BACK_CHECK}
        # dry run: the plan in the metadata, nothing sent
        dry = _run(tmp_path, FINANCE_DESTINATIONS="netsuite,powerbi,tableau", FINANCE_PUBLISH_DRY_RUN="1")
        assert all(r.emulator.counters["requests"] == 0 for r in running.values())
        meta = {m.asset_key: m.materialization.metadata for m in dry.get_asset_materialization_events()}
        assert meta[AssetKey(["publish", "netsuite_trade"])]["dry_run"].value["would_send"]
        # on: published, read back, checks pass
        done = _run(tmp_path, FINANCE_DESTINATIONS="netsuite,powerbi,tableau")
        checks = {e.asset_key.path[-1]: e for e in done.get_asset_check_evaluations()}
        assert set(checks) == {"netsuite_trade", "powerbi_marts", "tableau_marts"}
        assert all(c.passed for c in checks.values()), {k: c.metadata for k, c in checks.items()}
        assert all(c.metadata["read_back"].value > 0 for c in checks.values())
        assert running["netsuite"].emulator.stats()["invoice_count"] == 59
        assert len(running["tableau"].emulator.datasources()) == 3
    finally:
        for r in running.values():
            r.stop()
