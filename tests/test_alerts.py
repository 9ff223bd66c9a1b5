"""The trade payment-failure alert: fires above the threshold, once per dedupe key, into ops.alerts
and the run log; the sensor asks for an evaluation after every refresh of the payments mart."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import duckdb
import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context, materialize

from finance_pipeline.alerts import rules, store

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)


def _payments(con, rows):
    con.execute("create schema if not exists marts")
    con.execute("""create or replace table marts.fct_payments (
        payment_id varchar, processor varchar, customer_type varchar, status varchar, attempted_at timestamptz)""")
    con.executemany("insert into marts.fct_payments values (?, ?, ?, ?, ?)", rows)


def _attempts(n_ok, n_failed, processor="stripe", customer_type="trade", hours_ago=5):
    at = NOW - timedelta(hours=hours_ago)
    return ([(f"ok{i}", processor, customer_type, "succeeded", at) for i in range(n_ok)]
            + [(f"bad{i}", processor, customer_type, "failed", at) for i in range(n_failed)])


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    yield c
    c.close()


def test_fires_above_threshold_once_per_dedupe_key(con, settings):
    _payments(con, _attempts(4, 2))
    alerts = rules.trade_payment_failures(con, settings, NOW)
    assert len(alerts) == 1 and alerts[0].details["failures"] == 2 and alerts[0].severity == "warning"
    assert store.record(con, alerts, NOW) == alerts
    # the same condition an hour later is the same alert: nothing new
    assert store.record(con, rules.trade_payment_failures(con, settings, NOW + timedelta(hours=1)),
                        NOW + timedelta(hours=1)) == []
    assert con.execute("select count(*) from ops.alerts").fetchone()[0] == 1


def test_quiet_below_threshold_minimum_volume_and_outside_window(con, settings):
    _payments(con, _attempts(9, 1) + _attempts(0, 3, processor="other", hours_ago=200)
              + _attempts(0, 2, processor="tiny") + _attempts(0, 9, customer_type="retail", processor="retailco"))
    assert rules.trade_payment_failures(con, settings, NOW) == []


def test_threshold_is_a_setting(con, settings):
    _payments(con, _attempts(9, 1))
    strict = dataclasses.replace(settings, payment_failure_threshold=0.05)
    assert len(rules.trade_payment_failures(con, strict, NOW)) == 1


def test_alerts_asset_writes_table_and_run_log(tmp_path, monkeypatch, caplog):
    from finance_pipeline.defs.alerts import alerts

    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FINANCE_MODE", "live")  # as_of = now: put the attempts in the last hours
    c = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    now = datetime.now(timezone.utc)
    c.execute("create schema marts")
    c.execute("create table marts.fct_payments (payment_id varchar, processor varchar, customer_type varchar, "
              "status varchar, attempted_at timestamptz)")
    c.executemany("insert into marts.fct_payments values (?, 'stripe', 'trade', ?, ?)",
                  [(f"p{i}", "failed" if i < 4 else "succeeded", now - timedelta(hours=1)) for i in range(6)])
    c.close()
    result = materialize([alerts])
    assert result.success
    mat = result.asset_materializations_for_node("ops__alerts")[0]
    assert mat.metadata["new_alerts"].value == 1
    c = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    assert c.execute("select rule, severity from ops.alerts").fetchall() == [("trade_payment_failures", "critical")]
    c.close()
    assert materialize([alerts]).asset_materializations_for_node("ops__alerts")[0].metadata["new_alerts"].value == 0


def test_sensor_requests_an_evaluation_after_a_payments_refresh():
    from dagster import AssetMaterialization

    from finance_pipeline.definitions import defs
    from finance_pipeline.defs.alerts import payment_failure_alert_sensor

    with DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(AssetMaterialization(asset_key=AssetKey(["marts", "fct_payments"])))
        ctx = build_sensor_context(instance=instance, definitions=defs)
        requests = list(payment_failure_alert_sensor(ctx) or [])
        assert len(requests) == 1 and requests[0].run_key
