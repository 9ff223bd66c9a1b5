"""The Dagster definitions load as `dagster dev` loads them, with the groups, jobs, schedules and
sensor the UI must show."""
from __future__ import annotations

from dagster import AssetKey, Definitions


def test_definitions_load_with_groups_jobs_schedules_and_sensor():
    from finance_pipeline.definitions import defs

    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {"ingest", "staging", "intermediate", "marts", "publish", "alerts"} <= groups
    for key in (["raw_shopify", "orders"], ["raw_stripe", "charges"], ["staging", "stg_shopify__orders"],
                ["marts", "fct_orders"], ["marts", "rpt_payout_reconciliation"], ["publish", "xero_trade_invoices"]):
        assert graph.has(AssetKey(key)), key
    # dbt sources resolve to the dlt assets: lineage runs from the API to the marts
    assert AssetKey(["raw_shopify", "orders"]) in graph.get(AssetKey(["staging", "stg_shopify__orders"])).parent_keys
    # the ECB rates join the main job like any source, down to the FX marts
    assert AssetKey(["raw_ecb", "rates"]) in graph.get(AssetKey(["staging", "stg_ecb__rates"])).parent_keys
    main = defs.resolve_job_def("daily_close").asset_layer.selected_asset_keys
    assert {AssetKey(["raw_ecb", "rates"]), AssetKey(["marts", "fct_fx_rates"]), AssetKey(["marts", "rpt_fx_exposure"])} <= main
    assert {s.name for s in defs.schedules} == {"hourly_sync_schedule", "daily_close_schedule"}
    assert {s.name for s in defs.sensors} == {"alerts_after_marts_sensor", "webhook_inbox_sensor"}
    assert defs.resolve_job_def("hourly_sync") and defs.resolve_job_def("daily_close")
    checks = list(graph.asset_check_keys)
    assert any(c.asset_key == AssetKey(["marts", "fct_orders"]) for c in checks)
