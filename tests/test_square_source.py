"""The Square dlt source: full load, merge on rerun, incremental pickup after `sandbox advance`
(new sales, returns of old sales, fees computed, payouts landed), 10 % faults, quarantine."""
from __future__ import annotations

import shutil

import duckdb
import pytest

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.square.emulator import SquareEmulator
from finance_pipeline.platforms.square.source import square_source
from finance_pipeline.sandbox.store import Sandbox
from tests.conftest import make_settings

TABLES = ("orders", "payments", "refunds", "payouts", "payout_entries", "catalog_variations")


def truth(sandbox: Sandbox) -> dict[str, int]:
    with sandbox.connect() as con:
        row = con.execute("""
            select (select count(*) from square_orders where created_at <= $c),
                   (select count(*) from square_payments where created_at <= $c),
                   (select count(*) from square_refunds where created_at <= $c),
                   (select count(*) from square_payouts where created_at <= $c),
                   (select count(*) from square_payout_entries e join square_payouts p using (payout_id)
                      where p.created_at <= $c),
                   (select count(*) from square_catalog),
                   (select count(distinct payment_id) from square_refunds where created_at <= $c),
                   (select count(*) from square_payouts where paid_at <= $c)""", {"c": sandbox.clock}).fetchone()
    return dict(zip(TABLES + ("refunded_payments", "paid_payouts"), row))


def loaded(settings) -> dict[str, int]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        out = {t: con.execute(f"select count(*) from raw_square.{t}").fetchone()[0] for t in TABLES}
        for t in TABLES:
            assert con.execute(f"select count(*) = count(distinct id) from raw_square.{t}").fetchone()[0], t
        out["refunded_payments"] = con.execute(
            "select count(*) from raw_square.payments where refunded_money is not null").fetchone()[0]
        out["paid_payouts"] = con.execute("select count(*) from raw_square.payouts where status = 'PAID'").fetchone()[0]
    finally:
        con.close()
    return out


def run(settings, running, quarantine=None):
    quarantine = quarantine if quarantine is not None else Quarantine("square")
    conn = Connection("square", running.url, running.emulator.credentials(), settings)
    return run_platform(settings, "square", square_source(conn, quarantine), quarantine)


def test_source_builds_without_a_connection():
    source = square_source()
    assert set(source.resources) == set(TABLES)
    with pytest.raises(Exception, match="without a connection"):
        list(source.resources["payments"])


def test_load_rerun_and_advance(settings, sandbox, start_emulator):
    running = start_emulator(SquareEmulator, sandbox, time_scale=settings.time_scale)
    run(settings, running)
    assert loaded(settings) == truth(sandbox)
    requests_before = running.emulator.counters["requests"]
    run(settings, running)  # rerun: merge, nothing doubled, only the lookback window is read again
    assert loaded(settings) == truth(sandbox)
    assert running.emulator.counters["requests"] - requests_before < requests_before

    sandbox.advance(hours=24 * 21)
    with sandbox.connect() as con:  # an old sale returned in the new window must arrive
        (late,) = con.execute("""select count(*) from square_refunds r join square_payments p using (payment_id)
                                 where r.created_at > ? - interval 21 day and r.created_at <= ?
                                   and p.created_at <= ? - interval 21 day""",
                              [sandbox.clock, sandbox.clock, sandbox.clock]).fetchone()
    assert late > 0
    run(settings, running)
    after = loaded(settings)
    assert after == truth(sandbox)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:  # every payment's fee is there once computed (an update to the payment)
        (missing_fee,) = con.execute("""select count(*) from raw_square.payments where status = 'COMPLETED'
                                        and source_type = 'CARD' and processing_fee is null""").fetchone()
    finally:
        con.close()
    assert missing_fee == 0
    assert running.emulator.counters["over_limit"] == 0


def test_faults_change_nothing(settings, sandbox, small_world_dir, tmp_path, start_emulator):
    clean = start_emulator(SquareEmulator, sandbox, time_scale=settings.time_scale)
    run(settings, clean)
    faulty_settings = make_settings(tmp_path / "faulty")
    shutil.copytree(small_world_dir / "sandbox", faulty_settings.sandbox_dir)
    faulty = start_emulator(SquareEmulator, Sandbox(faulty_settings.sandbox_dir), time_scale=settings.time_scale,
                            fault_rate=0.1, timeout_delay_s=1.5)
    run(faulty_settings, faulty)
    assert sum(faulty.emulator.faults.values()) > 0
    assert faulty.emulator.counters["over_limit"] == 0
    a = duckdb.connect(str(settings.warehouse_path), read_only=True)
    b = duckdb.connect(str(faulty_settings.warehouse_path), read_only=True)
    try:
        for t in TABLES:
            cols = ", ".join(c for (c,) in a.execute(
                f"select column_name from information_schema.columns where table_schema = 'raw_square' "
                f"and table_name = '{t}' and column_name not like '\\_dlt%' escape '\\' order by 1").fetchall())
            assert a.execute(f"select {cols} from raw_square.{t} order by id").fetchall() == \
                b.execute(f"select {cols} from raw_square.{t} order by id").fetchall(), t
    finally:
        a.close()
        b.close()


def test_bad_record_is_quarantined_and_the_run_goes_on(settings, sandbox, start_emulator):
    running = start_emulator(SquareEmulator, sandbox, time_scale=settings.time_scale)
    with sandbox.connect() as con:
        (pid,), (rid,) = con.execute("""(select payment_id from square_payments where created_at <= ? limit 1)
                                        union all (select refund_id from square_refunds where created_at <= ? limit 1)""",
                                     [sandbox.clock, sandbox.clock]).fetchall()
    running.emulator.corruptions[pid] = {"amount_money": {"amount": "12.50", "currency": "GBP"}}
    running.emulator.corruptions[rid] = {"amount_money": {"amount": 100, "currency": "XXX"}}
    quarantine = Quarantine("square")
    result = run(settings, running, quarantine)
    assert result.quarantined == 2
    reasons = {row["record_id"]: row["reason"] for row in quarantine.rows}
    assert "not an integer amount" in reasons[pid] and "currency" in reasons[rid]
    counts = loaded(settings)
    expected = truth(sandbox)
    assert counts["payments"] == expected["payments"] - 1 and counts["refunds"] == expected["refunds"] - 1
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        (n,) = con.execute("select count(*) from ops.quarantine where platform = 'square'").fetchone()
    finally:
        con.close()
    assert n == 2
