"""Alert evaluation after each marts refresh: an asset that runs the rules, records alert events
(raised / worsened / reminder / resolved) in ops.alerts and sends them to the configured sinks,
and a sensor that requests it whenever a run outside the scheduled jobs rebuilt the marts."""

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
RULE_INPUTS = [AssetKey(["marts", name]) for name in
               ("fct_orders", "fct_payments", "fct_invoices", "fct_payouts", "rpt_payout_reconciliation")] + [
    AssetKey(["intermediate", "int_balance_transactions"])]
JOBS_THAT_EVALUATE_ALERTS = frozenset({"hourly_sync", "daily_close", "webhook_sync"})


def evaluate_and_notify(settings, now, log=None) -> tuple[list[store.AlertEvent], dict, int]:  # noqa: ANN001
    """Run every rule at `now`, record the events and deliver the outbox.  -> (events, sink report, open)"""
    from decimal import Decimal

    from finance_pipeline.notify import config as notify_config
    from finance_pipeline.notify.deliver import deliver

    sinks = notify_config.sinks(settings)
    with connect(settings) as con:
        results = rules.run_rules(con, settings, now, log=log)
        events = store.evaluate(con, results, now, Decimal(str(settings.alert_worsen_factor)), sinks=sinks)
        report = deliver(con, sinks)
        open_count = con.execute("select count(*) from ops.alert_state").fetchone()[0]
    return events, report, open_count


@asset(
    key=ALERTS_KEY,
    deps=RULE_INPUTS,
    group_name="alerts",
    pool=WAREHOUSE_POOL,
    description=(
        "Alert rules over the marts (order volume against an hour-of-week baseline, payment failure rate per "
        "processor, overdue trade invoices, missing or short payouts, reconciliation breaks, stale syncs). Each "
        "condition alerts once per dedupe key, again when it worsens or after its cooldown, and resolves when it "
        "clears; events land in ops.alerts and go to Slack, email and a signed webhook."
    ),
)
def alerts(context: AssetExecutionContext) -> MaterializeResult:
    settings = get_settings()
    now = as_of(settings)
    events, report, open_count = evaluate_and_notify(settings, now, log=context.log.info)
    for ev in events:
        log = context.log.error if ev.severity == "critical" and ev.event != "resolved" else context.log.warning
        log(f"ALERT {ev.event} [{ev.severity}] {ev.rule}: {ev.title}")
    for sink, outcome in report.items():
        if outcome["failed"]:
            context.log.warning(f"{sink}: {outcome['failed']} delivery(ies) failed, retried next evaluation: "
                                f"{'; '.join(outcome['errors'][:3])}")
    return MaterializeResult(metadata={
        "as_of": now.isoformat(),
        "new_alerts": sum(1 for e in events if e.event != "resolved"),
        "resolved": sum(1 for e in events if e.event == "resolved"),
        "open_alerts": open_count,
        "sent": MetadataValue.json({k: {"sent": v["sent"], "failed": v["failed"]} for k, v in report.items()}),
        "events": MetadataValue.md("\n".join(f"- {e.event} **{e.severity}** {e.title}" for e in events) or "none"),
    })


alerts_job = define_asset_job("evaluate_alerts", selection=[ALERTS_KEY],
                              tags={WAREHOUSE_TAG: "writer", "finance/trigger": "sensor"})


@asset_sensor(asset_key=AssetKey(["marts", "fct_payments"]), job=alerts_job, name="alerts_after_marts_sensor",
              minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
              description="After the marts were rebuilt by a run that did not evaluate the alerts itself (a manual "
                          "materialization from the UI), evaluate the alert rules.")
def alerts_after_marts_sensor(context: SensorEvaluationContext, asset_event: EventLogEntry):
    if asset_event.job_name in JOBS_THAT_EVALUATE_ALERTS:
        return  # the scheduled and webhook jobs run the alerts asset themselves
    yield RunRequest(run_key=f"marts:{asset_event.run_id or 'runless'}:{asset_event.timestamp}")


# the name the first version used (README, older tests)
payment_failure_alert_sensor = alerts_after_marts_sensor
