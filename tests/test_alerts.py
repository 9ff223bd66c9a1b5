"""Alert rules on small synthetic marts: each fires on its anomaly (channel-agnostic), stays quiet on
a normal business, and reads its thresholds from the settings."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pytest

from finance_pipeline.alerts import rules, store
from tests.alert_marts import NOW, add_failed_payments, add_invoice, add_orders, normal_business, remove_orders
from tests.conftest import make_settings


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    normal_business(c, NOW - timedelta(weeks=10), NOW)
    yield c
    c.close()


@pytest.fixture
def cfg(tmp_path):
    return make_settings(tmp_path)


def _fire(rule, con, cfg, at=NOW):
    return {a.dedupe_key: a for a in rule(con, cfg, at)}


def test_normal_business_raises_nothing_over_a_month_of_evaluations(con, cfg):
    quiet = [r for r in rules.RULES if r is not rules.stale_sync]
    fired = []
    for h in range(0, 24 * 30, 2):  # every other hour of a month
        at = NOW - timedelta(hours=h)
        for rule in quiet:
            fired += [(at, a.title) for a in rule(con, cfg, at)]
    assert fired == []


def test_volume_spike_per_channel(con, cfg):
    add_orders(con, "woocommerce", NOW - timedelta(hours=10), hours=6, per_hour=12)
    alerts = _fire(rules.order_volume, con, cfg)
    assert set(alerts) == {"woocommerce:spike"}
    a = alerts["woocommerce:spike"]
    assert a.details["orders"] >= 72 and a.details["robust_z"] >= cfg.alert_volume_z and len(a.details["baseline_weeks"]) == 8
    assert a.severity == "critical"  # far beyond twice the threshold


def test_volume_drop_when_a_channel_goes_quiet(con, cfg):
    remove_orders(con, "shopify", NOW - timedelta(hours=24), NOW)
    alerts = _fire(rules.order_volume, con, cfg)
    assert set(alerts) == {"shopify:drop"} and alerts["shopify:drop"].severity == "critical"
    assert alerts["shopify:drop"].details["orders"] == 0


def test_volume_baseline_is_hour_of_week(con, cfg):
    """A weekly Monday-morning rush is expected on Mondays, and a spike on a Tuesday."""
    narrow = dataclasses.replace(cfg, alert_volume_window_hours=3)
    monday = datetime(2026, 3, 9, 12, tzinfo=timezone.utc)  # a Monday noon; the rush is 09:00-12:00
    for week in range(0, 10):
        add_orders(con, "shopify", monday - timedelta(weeks=week, hours=3), hours=3, per_hour=25)
    assert rules.order_volume(con, narrow, monday) == []  # the usual Monday rush
    tuesday = monday + timedelta(days=1)
    add_orders(con, "shopify", tuesday - timedelta(hours=3), hours=3, per_hour=25)
    (alert,) = rules.order_volume(con, narrow, tuesday)
    assert alert.dedupe_key == "shopify:spike" and alert.details["orders"] >= 75


def test_volume_new_channel_without_history_is_not_judged(con, cfg):
    add_orders(con, "ebay", NOW - timedelta(hours=5), hours=5, per_hour=30)
    assert "ebay:spike" not in _fire(rules.order_volume, con, cfg)


def test_payment_failure_spike_per_processor(con, cfg):
    add_failed_payments(con, "stripe", NOW - timedelta(hours=20), 6)
    con.execute("insert into marts.fct_payments select 'stripe', 'ok' || i, 'stripe', 'trade', 'c', null, "
                "'succeeded', 10, ?::timestamptz - interval (i) day from range(1, 40) t(i)", [NOW])
    alerts = _fire(rules.payment_failures, con, cfg)
    assert set(alerts) == {"stripe"}
    assert alerts["stripe"].details["failures"] == 6 and alerts["stripe"].severity == "critical"
    assert alerts["stripe"].details["p_value"] <= cfg.alert_payment_failure_p


def test_payment_failures_quiet_for_a_couple_of_ordinary_declines(con, cfg):
    con.execute("insert into marts.fct_payments select 'stripe', 'ok' || i, 'stripe', 'trade', 'c', null, "
                "'succeeded', 10, ?::timestamptz - interval (i) day from range(1, 40) t(i)", [NOW])
    add_failed_payments(con, "stripe", NOW - timedelta(hours=5), 2)
    con.execute("insert into marts.fct_payments values ('stripe', 'ok-now1', 'stripe', 'trade', 'c', null, "
                "'succeeded', 10, ?), ('stripe', 'ok-now2', 'stripe', 'trade', 'c', null, 'succeeded', 10, ?)",
                [NOW - timedelta(hours=3), NOW - timedelta(hours=2)])
    assert rules.payment_failures(con, cfg, NOW) == []  # 2 of 4 failed: unlucky, not an outage
    strict = dataclasses.replace(cfg, alert_payment_failure_p=0.2)
    assert len(rules.payment_failures(con, strict, NOW)) == 1  # the threshold is a setting


def test_overdue_invoices_cross_30_60_90(con, cfg):
    today = NOW.date()
    add_invoice(con, "INV-1", "C1", today - timedelta(days=20), "500.00")  # overdue, under 30 days
    add_invoice(con, "INV-2", "C2", today - timedelta(days=45), "800.00")
    add_invoice(con, "INV-3", "C3", today - timedelta(days=75), "300.00", open_amount="120.00")
    add_invoice(con, "INV-4", "C4", today - timedelta(days=100), "900.00")
    add_invoice(con, "INV-5", "C4", today - timedelta(days=40), "100.00")
    alerts = _fire(rules.overdue_invoices, con, cfg)
    assert {k: (a.severity, a.value) for k, a in alerts.items()} == {
        "C2": ("info", 30), "C3": ("warning", 60), "C4": ("critical", 90)}
    assert alerts["C4"].details["open_home"] == "1000.00" and len(alerts["C4"].details["invoices"]) == 2
    assert alerts["C3"].details["open_home"] == "120.00"
    high = dataclasses.replace(cfg, alert_overdue_min_home=500.0)
    assert set(_fire(rules.overdue_invoices, con, high)) == {"C2", "C4"}


def test_overdue_counts_payments_made_after_as_of_as_still_open(con, cfg):
    add_invoice(con, "INV-9", "C9", NOW.date() - timedelta(days=40), "700.00", open_amount="0.00")
    con.execute("insert into marts.fct_payments values ('stripe', 'late', 'stripe', 'trade', 'C9', 'INV-9', "
                "'succeeded', 700, ?)", [NOW + timedelta(days=3)])
    assert set(_fire(rules.overdue_invoices, con, cfg)) == {"C9"}  # at NOW it was not paid yet
    assert rules.overdue_invoices(con, cfg, NOW + timedelta(days=4)) == []


def test_payout_missing_short_and_reconciliation_break(con, cfg):
    con.execute("insert into intermediate.int_balance_transactions values "
                "('woocommerce', 'lost1', null, 'charge', 75.00, 'GBP', ?)", [NOW - timedelta(days=9)])
    con.execute("insert into marts.rpt_payout_reconciliation values "
                "('shopify', 'po_short', ?, 90.00, 100.00, -10.00, 3, 'payout differs', 'gbp', 'break'), "
                "('shopify', 'po_empty', ?, 50.00, 0, 50.00, 0, 'no balance transactions found for this payout', 'gbp', 'break')",
                [NOW.date() - timedelta(days=1), NOW.date() - timedelta(days=1)])
    # a channel whose money reaches the bank another way (no payouts at all) is not judged
    con.execute("insert into intermediate.int_balance_transactions values "
                "('magento', 'm1', null, 'charge', 80.00, 'GBP', ?)", [NOW - timedelta(days=60)])
    assert set(_fire(rules.payout_missing, con, cfg)) == {"woocommerce"}
    # a channel that settles every two weeks gets its own, longer, limit
    con.execute("insert into marts.fct_payouts values ('amazon', 'g1', ?)", [NOW.date() - timedelta(days=20)])
    con.execute("insert into intermediate.int_balance_transactions select 'amazon', 'a' || i, 'g1', 'charge', 10.00, "
                "'GBP', ?::timestamptz - interval (i) day from range(21, 35) t(i)", [NOW])
    con.execute("insert into intermediate.int_balance_transactions values "
                "('amazon', 'open1', null, 'charge', 10.00, 'GBP', ?)", [NOW - timedelta(days=10)])
    assert "amazon" not in _fire(rules.payout_missing, con, cfg)  # 10 days: normal for a 14-day cycle
    assert "amazon" in _fire(rules.payout_missing, con, cfg, NOW + timedelta(days=8))
    short = _fire(rules.payout_short, con, cfg)
    assert set(short) == {"shopify:po_short"} and short["shopify:po_short"].value == Decimal("10.00")
    assert set(_fire(rules.reconciliation_break, con, cfg)) == {"shopify:po_empty"}
    # the payout that was missing lands: the condition clears
    con.execute("update intermediate.int_balance_transactions set payout_id = 'po_late' where balance_transaction_id = 'lost1'")
    con.execute("insert into marts.fct_payouts values ('woocommerce', 'po_late', ?)", [NOW.date()])
    assert rules.payout_missing(con, cfg, NOW) == []


def test_stale_sync_from_dlt_loads(con, cfg, monkeypatch):
    from finance_pipeline.platforms import registry

    sources = [p.name for p in registry.sources()]
    now = datetime.now(timezone.utc)
    for i, name in enumerate(sources):
        con.execute(f"create schema raw_{name}")
        con.execute(f"create table raw_{name}._dlt_loads (load_id varchar, status bigint, inserted_at timestamptz)")
        if i == 0:
            con.execute(f"insert into raw_{name}._dlt_loads values ('1', 0, ?), ('2', 1, ?)",
                        [now - timedelta(hours=30), now - timedelta(minutes=5)])  # the newer load did not finish
        elif i == 1:
            con.execute(f"insert into raw_{name}._dlt_loads values ('1', 0, ?)", [now - timedelta(minutes=20)])
    alerts = {a.dedupe_key: a for a in rules.stale_sync(con, cfg, NOW, now=now)}
    assert sources[0] in alerts and alerts[sources[0]].severity == "critical"  # 30 h > 4 × 6 h
    assert sources[1] not in alerts
    for name in sources[2:]:
        assert alerts[name].title.endswith("never synced")


def test_a_rule_whose_mart_is_missing_is_skipped_and_resolves_nothing(tmp_path, cfg):
    c = duckdb.connect(str(tmp_path / "empty.duckdb"))
    messages = []
    results = rules.run_rules(c, cfg, NOW, rules=[rules.order_volume], log=messages.append)
    assert results == {"order_volume": None} and "order_volume" in messages[0]
    store.ensure(c)
    c.execute("insert into ops.alert_state values ('order_volume', 'shopify:drop', 'warning', 5, 't', ?, ?, 5, 'warning')",
              [NOW, NOW])
    assert store.evaluate(c, results, NOW) == []
    assert c.execute("select count(*) from ops.alert_state").fetchone()[0] == 1
