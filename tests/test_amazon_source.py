"""The Amazon dlt source: merge without duplicates, incremental after `sandbox advance`, 10 % faults
change nothing, a bad order is quarantined, the v0 Orders API as a setting, backfill progress."""
from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import duckdb
import pytest

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.amazon.emulator import AmazonEmulator
from finance_pipeline.platforms.amazon.source import amazon_source
from finance_pipeline.platforms.base import Connection

TABLES = {"orders": "order_id, last_updated_time, fulfillment_status, order_items",
          "financial_event_groups": "group_id, processing_status, fund_transfer_status, original_total, converted_total",
          "financial_events": "component_id, group_id, posted_date, list_name, component_type, amount"}


def _load(settings, running, orders_api=None):
    quarantine = Quarantine("amazon")
    conn = Connection("amazon", running.url, running.emulator.credentials(), settings)
    result = run_platform(settings, "amazon", amazon_source(conn, quarantine, orders_api=orders_api), quarantine)
    return result, quarantine


def _snapshot(settings) -> dict[str, set]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return {t: set(con.execute(f"select {cols} from raw_amazon.{t}").fetchall()) for t, cols in TABLES.items()}


def _counts(settings) -> dict[str, tuple[int, int]]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        key = {"orders": "order_id", "financial_event_groups": "group_id", "financial_events": "component_id"}
        return {t: con.execute(f"select count(*), count(distinct {k}) from raw_amazon.{t}").fetchone()
                for t, k in key.items()}


def _world(sandbox, at):
    visible = at - timedelta(minutes=2)
    with sandbox.connect() as con:
        return con.execute("""select (select count(*) from amazon_orders where purchase_at <= $v),
                                     (select count(*) from amazon_event_groups where start_at <= $v),
                                     (select count(*) from amazon_event_lines where posted_at <= $v)""",
                           {"v": visible}).fetchone()


def test_load_rerun_and_incremental_after_advance(settings, sandbox, start_emulator, caplog):
    running = start_emulator(AmazonEmulator, sandbox, time_scale=settings.time_scale)
    caplog.set_level(logging.INFO, logger="finance_pipeline.amazon")
    _load(settings, running)
    orders, groups, lines = _world(sandbox, sandbox.clock)
    counts = _counts(settings)
    assert counts == {"orders": (orders, orders), "financial_event_groups": (groups, groups),
                      "financial_events": (lines, lines)}
    assert "amazon financial events: 10 pages" in caplog.text  # a long backfill says how far it got

    result, _ = _load(settings, running)  # a rerun: only the lookback windows, merged, nothing doubled
    assert _counts(settings) == counts
    assert result.rows["orders"] < orders and result.rows["financial_events"] < lines

    sandbox.advance(hours=24 * 20)
    requests_before = running.emulator.counters["requests"]
    result, _ = _load(settings, running)
    orders2, groups2, lines2 = _world(sandbox, sandbox.clock)
    assert orders2 > orders and groups2 > groups and lines2 > lines
    assert _counts(settings) == {"orders": (orders2, orders2), "financial_event_groups": (groups2, groups2),
                                 "financial_events": (lines2, lines2)}
    # settlements that closed and got paid since are seen with their new status
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        (open_groups,), = con.execute("select count(*) from raw_amazon.financial_event_groups "
                                      "where processing_status = 'Open'").fetchall()
    assert open_groups == 2  # one per marketplace, the current period
    assert running.emulator.counters["requests"] - requests_before < 40  # incremental, not a re-read
    assert running.emulator.counters["over_limit"] == 0


def test_faults_change_nothing(settings, sandbox, start_emulator, tmp_path):
    clean = dataclasses.replace(settings, data_dir=tmp_path / "clean")
    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "sandbox").symlink_to(settings.sandbox_dir)
    running = start_emulator(AmazonEmulator, sandbox, time_scale=settings.time_scale)
    _load(clean, running)
    faulty = start_emulator(AmazonEmulator, sandbox, time_scale=settings.time_scale, fault_rate=0.1, fault_seed=11)
    _, quarantine = _load(settings, faulty)
    assert sum(faulty.emulator.faults.values()) >= 5, faulty.emulator.faults
    assert faulty.emulator.faults["duplicate_page"] >= 1 or faulty.emulator.faults["truncate"] >= 1
    assert len(quarantine) == 0
    assert _snapshot(settings) == _snapshot(clean)
    assert faulty.emulator.counters["over_limit"] == 0


def test_a_bad_order_is_quarantined_and_the_rest_loaded(settings, sandbox, start_emulator):
    running = start_emulator(AmazonEmulator, sandbox, time_scale=settings.time_scale)
    with sandbox.connect() as con:
        (bad_id,), = con.execute("select order_id from amazon_orders order by purchase_at limit 1 offset 5").fetchall()
    running.emulator.corruptions[bad_id] = {"createdTime": "yesterday"}
    result, quarantine = _load(settings, running)
    assert [(r["entity"], r["record_id"]) for r in quarantine.rows] == [("orders", bad_id)]
    assert "createdTime" in quarantine.rows[0]["reason"]
    assert result.quarantined == 1
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        (n,), = con.execute("select count(*) from raw_amazon.orders where order_id = ?", [bad_id]).fetchall()
        (total,), = con.execute("select count(*) from raw_amazon.orders").fetchall()
    assert n == 0 and total == _world(sandbox, sandbox.clock)[0] - 1


def test_v0_orders_api_as_a_setting_gives_the_same_orders(settings, sandbox, start_emulator, tmp_path, monkeypatch):
    fast = dataclasses.replace(settings, time_scale=600.0)
    running = start_emulator(AmazonEmulator, sandbox, time_scale=fast.time_scale)
    _load(fast, running)
    new = {r[0]: r for r in _snapshot(fast)["orders"]}
    other = dataclasses.replace(fast, data_dir=tmp_path / "v0")
    (tmp_path / "v0").mkdir()
    (tmp_path / "v0" / "sandbox").symlink_to(settings.sandbox_dir)
    monkeypatch.setenv("FINANCE_AMAZON_ORDERS_API", "v0")
    _load(other, running)
    with duckdb.connect(str(other.warehouse_path), read_only=True) as con:
        v0 = {r[0]: r for r in con.execute(f"select {TABLES['orders']} from raw_amazon.orders").fetchall()}
        (version,), = con.execute("select distinct api_version from raw_amazon.orders").fetchall()
    assert version == "v0" and v0 == new
    assert running.emulator.counters["over_limit"] == 0


def test_unknown_orders_api_setting_is_refused(monkeypatch):
    monkeypatch.setenv("FINANCE_AMAZON_ORDERS_API", "mws")
    with pytest.raises(ValueError, match="FINANCE_AMAZON_ORDERS_API"):
        amazon_source(None)
