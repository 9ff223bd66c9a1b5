"""Alert evaluation after each marts refresh: an asset that runs the rules, and a sensor that
requests it whenever the payments mart is rebuilt by any run."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    DefaultSensorStatus,
    EventLogEntry,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    asset,
    asset_sensor,
    define_asset_job,
)

from finance_pipeline.alerts import rules, store
from finance_pipeline.defs.common import WAREHOUSE_POOL, WAREHOUSE_TAG, as_of
from finance_pipeline.settings import get_settings
from finance_pipeline.warehouse import connect

ALERTS_KEY = AssetKey(["ops", "alerts"])
JOBS_THAT_EVALUATE_ALERTS = frozenset({"hourly_sync", "daily_close"})


@asset(
    key=ALERTS_KEY,
    deps=[AssetKey(["marts", "fct_payments"])],
    group_name="alerts",
    pool=WAREHOUSE_POOL,
    description=(
        "Threshold alerts raised from the marts (trade payment failure rate per processor …), "
        "each once per dedupe key within its cooldown, recorded in ops.alerts and in the run log."
    ),
)
def alerts(context: AssetExecutionContext) -> MaterializeResult:
    settings = get_settings()
    now = as_of(settings)
    raised = []
    with connect(settings) as con:
        for rule in rules.RULES:
            raised.extend(store.record(con, rule(con, settings, now), now))
        total = con.execute("select count(*) from ops.alerts").fetchone()[0]
    for alert in raised:
        log = context.log.error if alert.severity == "critical" else context.log.warning
        log(f"ALERT [{alert.severity}] {alert.rule}: {alert.title}")
    return MaterializeResult(metadata={
        "new_alerts": len(raised),
        "alerts_total": total,
        "raised": MetadataValue.md("\n".join(f"- **{a.severity}** {a.title}" for a in raised) or "none"),
    })


alerts_job = define_asset_job("evaluate_alerts", selection=[ALERTS_KEY], tags={WAREHOUSE_TAG: "writer"})


@asset_sensor(asset_key=AssetKey(["marts", "fct_payments"]), job=alerts_job, name="payment_failure_alert_sensor",
              minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
              description="After a refresh of marts.fct_payments by any run that did not evaluate the "
                          "alerts itself (a manual materialization), evaluate the alert rules.")
def payment_failure_alert_sensor(context: SensorEvaluationContext, asset_event: EventLogEntry):
    if asset_event.job_name in JOBS_THAT_EVALUATE_ALERTS:
        return  # hourly_sync and daily_close run the alerts asset themselves
    yield RunRequest(run_key=f"fct_payments:{asset_event.run_id or 'runless'}:{asset_event.timestamp}")
