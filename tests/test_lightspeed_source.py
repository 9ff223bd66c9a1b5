"""The Lightspeed dlt source: full load, merge on rerun, incremental pickup by timeStamp after
`sandbox advance` (new tickets, returns, customers attached to old tickets), 10 % faults,
quarantine of a bad sale."""
from __future__ import annotations

import shutil

import duckdb
import pytest

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.lightspeed.emulator import LightspeedEmulator
from finance_pipeline.platforms.lightspeed.source import as_list, lightspeed_source
from finance_pipeline.sandbox.store import Sandbox
from tests.conftest import make_settings


def truth(sandbox: Sandbox) -> dict[str, str]:
    """saleID -> customerID as the API shows it at the clock."""
    with sandbox.connect() as con:
        return dict(con.execute("""select sale_id, case when edited_at <= $c then late_customer_id else customer_id end
                                   from lightspeed_sales where created_at <= $c""", {"c": sandbox.clock}).fetchall())


def loaded(settings) -> dict[str, str]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        rows = con.execute("select id, customer_id from raw_lightspeed.sales").fetchall()
    finally:
        con.close()
    assert len(rows) == len({r[0] for r in rows})
    return dict(rows)


def run(settings, running, quarantine=None):
    quarantine = quarantine if quarantine is not None else Quarantine("lightspeed")
    conn = Connection("lightspeed", running.url, running.emulator.credentials(), settings)
    return run_platform(settings, "lightspeed", lightspeed_source(conn, quarantine), quarantine)


def test_single_objects_become_lists():
    assert as_list({"a": 1}) == [{"a": 1}] and as_list([1, 2]) == [1, 2] and as_list(None) == [] and as_list("") == []


def test_source_builds_without_a_connection():
    source = lightspeed_source()
    assert set(source.resources) == {"sales"}
    with pytest.raises(Exception, match="without a connection"):
        list(source.resources["sales"])


def test_load_rerun_and_advance(settings, sandbox, start_emulator):
    running = start_emulator(LightspeedEmulator, sandbox, time_scale=settings.time_scale)
    run(settings, running)
    assert loaded(settings) == truth(sandbox)
    run(settings, running)
    assert loaded(settings) == truth(sandbox)
    old = sandbox.clock
    with sandbox.connect() as con:  # advance past the next customer attached to an older ticket
        (edited_at,) = con.execute("""select min(edited_at) from lightspeed_sales
                                      where edited_at > ? and created_at <= ?""", [old, old]).fetchone() or (None,)
    hours = max(24 * 21, (edited_at - old).total_seconds() / 3600 + 1) if edited_at else 24 * 21
    sandbox.advance(hours=hours)
    run(settings, running)
    after = loaded(settings)
    assert after == truth(sandbox)
    if edited_at:  # the edited old ticket came back with its new customer
        with sandbox.connect() as con:
            sale, customer = con.execute("select sale_id, late_customer_id from lightspeed_sales where edited_at = ?",
                                         [edited_at]).fetchone()
        assert after[sale] == customer
    assert running.emulator.counters["over_limit"] == 0


def test_faults_change_nothing(settings, sandbox, small_world_dir, tmp_path, start_emulator):
    clean = start_emulator(LightspeedEmulator, sandbox, time_scale=settings.time_scale)
    run(settings, clean)
    faulty_settings = make_settings(tmp_path / "faulty")
    shutil.copytree(small_world_dir / "sandbox", faulty_settings.sandbox_dir)
    faulty = start_emulator(LightspeedEmulator, Sandbox(faulty_settings.sandbox_dir), time_scale=settings.time_scale,
                            fault_rate=0.1, timeout_delay_s=1.5, fault_seed=57)  # a seed that faults early
    run(faulty_settings, faulty)
    assert sum(faulty.emulator.faults.values()) > 0
    a = duckdb.connect(str(settings.warehouse_path), read_only=True)
    b = duckdb.connect(str(faulty_settings.warehouse_path), read_only=True)
    try:
        cols = ", ".join(c for (c,) in a.execute(
            "select column_name from information_schema.columns where table_schema = 'raw_lightspeed' "
            "and table_name = 'sales' and column_name not like '\\_dlt%' escape '\\' order by 1").fetchall())
        assert a.execute(f"select {cols} from raw_lightspeed.sales order by id").fetchall() == \
            b.execute(f"select {cols} from raw_lightspeed.sales order by id").fetchall()
    finally:
        a.close()
        b.close()
    assert faulty.emulator.counters["over_limit"] == 0


def test_bad_record_is_quarantined_and_the_run_goes_on(settings, sandbox, start_emulator):
    running = start_emulator(LightspeedEmulator, sandbox, time_scale=settings.time_scale)
    expected = truth(sandbox)
    bad = sorted(expected)[3]
    running.emulator.corruptions[bad] = {"calcTotal": "12,50"}
    quarantine = Quarantine("lightspeed")
    result = run(settings, running, quarantine)
    assert result.quarantined == 1 and quarantine.rows[0]["record_id"] == bad
    assert "calcTotal" in quarantine.rows[0]["reason"]
    assert set(loaded(settings)) == set(expected) - {bad}
