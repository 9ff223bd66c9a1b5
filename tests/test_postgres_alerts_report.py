"""Alerts, their notifications and the finance report on the PostgreSQL warehouse
(FINANCE_WAREHOUSE=postgres): the same small world built on DuckDB and on a real server, through the
real Dagster job (ingest + dbt + the alerts asset + the report asset, no publishing), raises the same
alerts, fills the same outbox and reports the same figures; a second evaluation on Postgres raises
nothing new; `finance-pipeline report` writes the report from the server without a DuckDB file.

Shopify and Stripe are the cheapest sources that raise several kinds of alert in the small world: the
volume spike on 2025-12-31 (Shopify orders), the trade customer who stopped paying (overdue
invoices) and every source not synced (stale syncs)."""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from finance_pipeline.report.data import ReportData, load
from finance_pipeline.settings import Settings
from finance_pipeline.warehouse import open_warehouse
from pg_helpers import _canon, pg_env, pg_server, run_on, warehouse_only  # noqa: F401
from pipeline_helpers import pipeline_env

pytestmark = pytest.mark.timeout(900)

SOURCES = {"shopify", "stripe"}
ALERTS_AND_REPORT = {("ops", "alerts"), ("reports", "finance_report")}
# what ops.alerts / ops.alert_deliveries hold that is not wall-clock time or a receiver's own id
ALERT_COLUMNS = "alert_id, rule, severity, dedupe_key, title, details, as_of, event, value"
STATE_COLUMNS = "rule, dedupe_key, severity, value, title, opened_at, notified_at, notified_value, notified_severity"
DELIVERY_COLUMNS = "alert_id, sink, status, attempts, last_error"


def _with_alerts_and_report(key_path: tuple[str, ...]) -> bool:
    return warehouse_only(key_path) or key_path in ALERTS_AND_REPORT


def _rows(target: Any, sql: str) -> list[tuple]:
    """Through the pipeline's own connection (JSON as text and timestamps in UTC on both engines)."""
    con = open_warehouse(target, read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _alerts(target: Any) -> list[tuple]:
    rows = _rows(target, f"select {ALERT_COLUMNS} from ops.alerts order by alert_id")
    return [tuple(orjson.loads(v) if i == 5 else _canon(v) for i, v in enumerate(r)) for r in rows]


def _table(target: Any, columns: str, table: str) -> list[tuple]:
    return [tuple(_canon(v) for v in r) for r in _rows(target, f"select {columns} from {table} order by 1, 2")]


def _same_types(a: Any, b: Any, where: str) -> list[str]:
    """Where the two report structures carry different Python types (an int against a Decimal, …)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [p for k in a for p in _same_types(a[k], b.get(k), f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        return [p for i, (x, y) in enumerate(zip(a, b)) for p in _same_types(x, y, f"{where}[{i}]")][:5]
    if a is None or b is None or type(a) is type(b):
        return []
    return [f"{where}: duckdb {type(a).__name__} {a!r}, postgres {type(b).__name__} {b!r}"]


def _differ(what: str, duck: list, pg: list) -> list[str]:
    """The rows only one warehouse has, named (empty when the two are equal, order included)."""
    if duck == pg:
        return []
    only_d = [r for r in duck if r not in pg]
    only_p = [r for r in pg if r not in duck]
    return [f"{what}: {len(duck)} rows on duckdb, {len(pg)} on postgres; only on duckdb {only_d[:3]}; "
            f"only on postgres {only_p[:3]}" + ("" if only_d or only_p else "; same rows, other order")]


def _figures(page: str) -> dict[str, str]:
    """The headline figures the page prints (data-figure spans), not its generation time."""
    return dict(re.findall(r'data-figure="([a-z_]+)">([^<]*)<', page))


def _cli_env(monkeypatch, tmp_path: Path) -> None:
    """The report command sets DAGSTER_HOME and FINANCE_WAREHOUSE_PATH for the process: put them back after."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster-home"))
    monkeypatch.delenv("FINANCE_WAREHOUSE_PATH", raising=False)


def test_alerts_notifications_and_report_on_postgres_equal_duckdb(pg_server, tmp_path, small_world_dir, capsys,
                                                                   monkeypatch):
    duck_dir, pg_dir = tmp_path / "duck", tmp_path / "pg"
    for d in (duck_dir, pg_dir):
        shutil.copytree(small_world_dir / "sandbox", d / "sandbox")
    run_on(duck_dir, SOURCES, keep=_with_alerts_and_report)
    database = pg_server.create_database("alerts_report")
    run_on(pg_dir, SOURCES, pg_server, database, keep=_with_alerts_and_report)
    with pipeline_env(pg_dir, **pg_env(pg_server, database)):
        pg = Settings.from_env().warehouse_target
    duck = duck_dir / "warehouse.duckdb"
    assert not (pg_dir / "warehouse.duckdb").exists()  # nothing on Postgres fell back to a local file

    # the same alerts, event for event (the data clock is the sandbox's, the same in both)
    alerts = _alerts(duck)
    problems = _differ("ops.alerts", alerts, _alerts(pg))
    problems += _differ("ops.alert_state", _table(duck, STATE_COLUMNS, "ops.alert_state"),
                        _table(pg, STATE_COLUMNS, "ops.alert_state"))
    # the same outbox: every event to every sandbox sink, each accepted by its receiver
    deliveries = _table(duck, DELIVERY_COLUMNS, "ops.alert_deliveries")
    problems += _differ("ops.alert_deliveries", deliveries, _table(pg, DELIVERY_COLUMNS, "ops.alert_deliveries"))
    assert len(deliveries) == 3 * len(alerts) and {d[2] for d in deliveries} == {"sent"}
    assert _rows(pg, "select count(*) from ops.alert_deliveries where remote_id is null or sent_at is null") == [(0,)]

    # the report: the same figures from either warehouse, money as Decimal
    d_duck, d_pg = load(duck), load(pg)
    assert isinstance(d_pg, ReportData) and d_pg.pnl and d_pg.aging and d_pg.trial_balance
    as_dicts = dataclasses.asdict(d_duck), dataclasses.asdict(d_pg)
    problems += _same_types(*as_dicts, "report")
    for key, value in as_dicts[0].items():  # (_canon refuses floats)
        duck_value, pg_value = _canon(value), _canon(as_dicts[1][key])
        if duck_value != pg_value:
            problems += _differ(f"report.{key}", *((list(v) if isinstance(v, (list, tuple)) else [v])
                                                  for v in (duck_value, pg_value)))
    assert not problems, "\n".join(problems)
    rules = {a[1] for a in alerts}
    assert {"order_volume", "overdue_invoices", "stale_sync"} <= rules, rules
    assert ("order_volume", "shopify:spike") in {(a[1], a[3]) for a in alerts}
    assert all(isinstance(a[8], Decimal) for a in alerts if a[8] is not None)  # values stay Decimal
    assert isinstance(d_pg.ar_open_home, Decimal) and isinstance(d_pg.tax_owed_home, Decimal)
    # … and the pages the report asset wrote print the same figures
    name = f"finance-report-{d_duck.as_of.isoformat()}.html"
    duck_page, pg_page = ((d / "reports" / name).read_text() for d in (duck_dir, pg_dir))
    assert len(_figures(duck_page)) == 7 and _figures(pg_page) == _figures(duck_page)

    # alerts once: evaluating again on Postgres (the alerts job alone) raises and sends nothing new
    before = _rows(pg, "select count(*) from ops.alerts")[0][0]
    run_on(pg_dir, SOURCES, pg_server, database, job="evaluate_alerts", keep=None)
    assert _alerts(pg) == alerts and _rows(pg, "select count(*) from ops.alerts")[0][0] == before
    assert _table(pg, DELIVERY_COLUMNS, "ops.alert_deliveries") == deliveries

    # `finance-pipeline report` on Postgres: from the server, no DuckDB file asked for or made
    from finance_pipeline import cli

    out = tmp_path / "cli-reports"
    _cli_env(monkeypatch, tmp_path)
    with pipeline_env(pg_dir, **pg_env(pg_server, database)):
        assert cli.main(["report", "--out", str(out)]) == 0
    assert _figures((out / name).read_text()) == _figures(duck_page)
    assert f"finance report as of {d_duck.as_of}" in capsys.readouterr().out
    assert not (pg_dir / "warehouse.duckdb").exists()


def test_report_command_on_an_empty_postgres_warehouse_says_what_to_do(pg_server, tmp_path, capsys, monkeypatch):
    from finance_pipeline import cli

    _cli_env(monkeypatch, tmp_path)
    database = pg_server.create_database("report_empty")
    with pipeline_env(tmp_path, **pg_env(pg_server, database)):
        assert cli.main(["report"]) == 1
    err = capsys.readouterr().err
    assert "marts are not built yet" in err and "finance-pipeline run" in err
    assert pg_server.password not in err
    assert not (tmp_path / "warehouse.duckdb").exists()



# -- every rule and the lifecycle on small synthetic marts, the same tables on both engines ------------
def _marts_on_postgres(duck: Any, pg: Any) -> None:
    """The synthetic marts DuckDB holds, as the same tables (same SQL types) on the server."""
    tables = duck.execute("select table_schema, table_name from information_schema.tables "
                          "where table_schema in ('marts', 'intermediate') order by 1, 2").fetchall()
    for schema, table in tables:
        columns = duck.execute("select column_name, data_type from information_schema.columns where table_schema = ? "
                               "and table_name = ? order by ordinal_position", [schema, table]).fetchall()
        pg.execute(f"create schema if not exists {schema}")
        pg.execute(f"create table {schema}.{table} ({', '.join(f'{c} {t}' for c, t in columns)})")
        pg.register("copied", duck.sql(f"select * from {schema}.{table}").to_arrow_table())
        pg.execute(f"insert into {schema}.{table} select * from copied")
        pg.unregister("copied")


def _synthetic_anomalies(con: Any) -> None:
    """One anomaly for each rule on top of the normal business of tests/alert_marts.py."""
    from tests.alert_marts import NOW, add_failed_payments, add_invoice, add_orders

    add_orders(con, "woocommerce", NOW - dt.timedelta(hours=10), hours=6, per_hour=12)  # order_volume
    add_failed_payments(con, "stripe", NOW - dt.timedelta(hours=20), 6)  # payment_failures
    con.executemany("insert into marts.fct_payments values ('stripe', ?, 'stripe', 'trade', 'c', null, 'succeeded', "
                    "10, ?)", [(f"ok{i}", NOW - dt.timedelta(days=i)) for i in range(1, 40)])
    today = NOW.date()
    for number, customer, days, total, open_amount in (  # overdue_invoices, all three thresholds
            ("INV-2", "C2", 45, "800.00", None), ("INV-3", "C3", 75, "300.00", "120.00"),
            ("INV-4", "C4", 100, "900.00", None), ("INV-5", "C4", 40, "100.00", None)):
        add_invoice(con, number, customer, today - dt.timedelta(days=days), total, open_amount)
    con.execute("insert into intermediate.int_balance_transactions values "  # payout_missing
                "('woocommerce', 'lost1', null, 'charge', 75.00, 'GBP', ?)", [NOW - dt.timedelta(days=9)])
    con.execute("insert into marts.fct_payouts values ('amazon', 'g1', ?)", [today - dt.timedelta(days=20)])
    con.executemany("insert into intermediate.int_balance_transactions values ('amazon', ?, 'g1', 'charge', 10.00, "
                    "'GBP', ?)", [(f"a{i}", NOW - dt.timedelta(days=i)) for i in range(21, 35)])
    con.execute("insert into intermediate.int_balance_transactions values "
                "('amazon', 'open1', null, 'charge', 10.00, 'GBP', ?)", [NOW - dt.timedelta(days=10)])
    con.execute("insert into marts.rpt_payout_reconciliation values "  # payout_short, reconciliation_break
                "('shopify', 'po_short', ?, 90.00, 100.00, -10.00, 3, 'payout differs', 'gbp', 'break'), "
                "('shopify', 'po_empty', ?, 50.00, 0, 50.00, 0, 'no balance transactions found', 'gbp', 'break')",
                [today - dt.timedelta(days=1)] * 2)


def test_every_rule_and_the_alert_lifecycle_agree_on_both_engines(pg_server, tmp_path):
    import duckdb

    from finance_pipeline.alerts import rules, store
    from finance_pipeline.settings import PostgresSettings, Secret
    from tests.alert_marts import NOW, normal_business
    from tests.conftest import make_settings

    cfg = make_settings(tmp_path)
    duck = duckdb.connect(str(tmp_path / "w.duckdb"))
    normal_business(duck, NOW - dt.timedelta(weeks=10), NOW + dt.timedelta(days=10))
    _synthetic_anomalies(duck)
    database = pg_server.create_database("alert_rules")
    pg = open_warehouse(PostgresSettings(pg_server.host, pg_server.port, pg_server.user,
                                         Secret(pg_server.password, "FINANCE_PG_PASSWORD"), database, "disable"))
    try:
        _marts_on_postgres(duck, pg)
        # the rules' conditions, alert for alert (titles and details included), at moments around the anomalies
        moments = [NOW - dt.timedelta(days=3), NOW, NOW + dt.timedelta(hours=13, minutes=1, microseconds=500_000),
                   NOW + dt.timedelta(days=8)]
        wall = dt.datetime.now(dt.timezone.utc)
        fired = set()
        for at in moments:
            on_duck = {r.__name__: [dataclasses.asdict(a) for a in r(duck, cfg, at)] for r in rules.RULES[:-1]}
            on_pg = {r.__name__: [dataclasses.asdict(a) for a in r(pg, cfg, at)] for r in rules.RULES[:-1]}
            on_duck["stale_sync"] = [dataclasses.asdict(a) for a in rules.stale_sync(duck, cfg, at, now=wall)]
            on_pg["stale_sync"] = [dataclasses.asdict(a) for a in rules.stale_sync(pg, cfg, at, now=wall)]
            assert on_pg == on_duck, at
            fired |= {rule for rule, alerts in on_pg.items() if alerts}
        assert fired == {r.__name__ for r in rules.RULES}, fired  # every rule raised something somewhere

        # the lifecycle over the same moments: the same events, outbox and open state
        kinds = set()
        for at in moments:
            results = rules.run_rules(duck, cfg, at)
            events_duck = [e.payload() for e in store.evaluate(duck, results, at, sinks=["webhook", "slack"])]
            events_pg = [e.payload() for e in store.evaluate(pg, rules.run_rules(pg, cfg, at), at,
                                                            sinks=["webhook", "slack"])]
            assert events_pg == events_duck, at
            kinds |= {e["event"] for e in events_pg}
            outbox = [(s, e.payload()) for s, e in store.pending_deliveries(duck, ["webhook", "slack"], 5)]
            assert [(s, e.payload()) for s, e in store.pending_deliveries(pg, ["webhook", "slack"], 5)] == outbox
            for con in (duck, pg):  # webhook accepted, Slack down: retried next time, given up after 5
                for sink, event in store.pending_deliveries(con, ["webhook", "slack"], 5):
                    store.mark_delivery(con, event.alert_id, sink, sink == "webhook", "200" if sink == "webhook"
                                        else "slack: service unavailable", max_attempts=2)
        for columns, table in ((DELIVERY_COLUMNS, "ops.alert_deliveries"), (STATE_COLUMNS, "ops.alert_state"),
                               (ALERT_COLUMNS, "ops.alerts")):
            duck_rows = [tuple(_canon(v) for v in r) for r in duck.execute(
                f"select {columns} from {table} order by 1, 2").fetchall()]
            assert [tuple(_canon(v) for v in r) for r in pg.execute(
                f"select {columns} from {table} order by 1, 2").fetchall()] == duck_rows, table
        statuses = {r[0] for r in pg.execute("select status from ops.alert_deliveries").fetchall()}
        assert statuses == {"sent", "failed", "pending"}, statuses
        assert {"raised", "resolved"} <= kinds, kinds
        # a rule whose mart is missing is skipped on Postgres as on DuckDB, and resolves nothing
        pg.execute("drop table marts.fct_orders")
        open_before = pg.execute("select count(*) from ops.alert_state").fetchone()[0]
        results = rules.run_rules(pg, cfg, moments[-1], rules=[rules.order_volume])
        assert results == {"order_volume": None}
        assert store.evaluate(pg, results, moments[-1]) == []
        assert pg.execute("select count(*) from ops.alert_state").fetchone()[0] == open_before
    finally:
        pg.close()
        duck.close()
