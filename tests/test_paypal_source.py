"""PayPal client + dlt source against the emulator, into a temporary DuckDB: Transaction Search
rows and the orders they name equal the world's visible truth; a re-run adds nothing; `sandbox
advance` brings new captures, refunds and withdrawals (after PayPal's reporting delay); 10 %
faults change nothing; a bad row is quarantined."""
from __future__ import annotations

import re

import pytest

from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.paypal.emulator import PayPalEmulator
from finance_pipeline.platforms.paypal.source import paypal_source
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from source_helpers import fresh, load_clean_and_faulty, load_source, query

KEYS = {"transactions": "transaction_id, transaction_event_code", "orders": "id"}


def load(settings, running, quarantine: Quarantine | None = None):
    return load_source(settings, "paypal", paypal_source, running, quarantine)


def truth(sandbox: Sandbox) -> dict:
    with sandbox.connect() as con:
        row = con.execute("""
            select (select count(*) from paypal_transactions where visible_at <= $c),
                   (select count(*) from paypal_transactions where visible_at <= $c and event_code = 'T1107'),
                   (select count(*) from paypal_transactions where visible_at <= $c and event_code = 'T0400'),
                   (select count(distinct order_id) from paypal_transactions where visible_at <= $c and event_code = 'T0006')
        """, {"c": sandbox.clock}).fetchone()
    return dict(zip(("transactions", "refunds", "withdrawals", "orders"), row))


def loaded(settings) -> dict:
    (row,) = query(settings, """
        select (select count(*) from raw_paypal.transactions),
               (select count(*) from raw_paypal.transactions where transaction_event_code = 'T1107'),
               (select count(*) from raw_paypal.transactions where transaction_event_code = 'T0400'),
               (select count(*) from raw_paypal.orders)""")
    return dict(zip(("transactions", "refunds", "withdrawals", "orders"), row))


def snapshot(settings) -> dict:
    """Every loaded row; the emulator's own address inside HATEOAS links is not data."""
    def clean(v):
        return re.sub(r"http://127\.0\.0\.1:\d+", "http://paypal", v) if isinstance(v, str) else v
    return {t: [tuple(clean(v) for v in row) for row in query(settings, f"select * from raw_paypal.{t} order by {k}")]
            for t, k in KEYS.items()}


@pytest.fixture
def world(small_world_dir, tmp_path):
    return fresh(tmp_path, small_world_dir)


def test_source_builds_without_a_connection():
    assert set(paypal_source().resources) == {"transactions", "orders"}


def test_load_rerun_and_advance(world):
    settings, sandbox = world
    running = serve(PayPalEmulator(sandbox, EmulatorConfig(time_scale=30)))
    try:
        load(settings, running)
        expected = truth(sandbox)
        assert expected["orders"] > 50 and expected["withdrawals"] > 10
        assert loaded(settings) == expected
        load(settings, running)
        assert loaded(settings) == expected
        sandbox.advance(24 * 21)
        load(settings, running)
        later = truth(sandbox)
        assert later["orders"] > expected["orders"] and later["refunds"] > expected["refunds"]
        assert later["withdrawals"] > expected["withdrawals"]
        assert loaded(settings) == later
        # an order refunded after it was first loaded carries its refund now
        (with_refunds,) = query(settings, """select count(*) from raw_paypal.orders
            where json_array_length(purchase_units -> '$[0].payments.refunds') > 0""")[0]
        assert with_refunds == later["refunds"]
        assert running.emulator.counters["over_limit"] == 0
    finally:
        running.stop()


def test_faults_change_nothing(tmp_path, small_world_dir, start_emulator):
    settings, faulty_settings, faulty = load_clean_and_faulty(
        tmp_path, small_world_dir, start_emulator, PayPalEmulator, load, fault_rate=0.10, fault_seed=5,
        faulty_settings={"http_max_attempts": 12})
    assert sum(faulty.emulator.faults.values()) > 0
    assert snapshot(faulty_settings) == snapshot(settings)


def test_bad_row_is_quarantined_and_the_run_goes_on(world, monkeypatch):
    settings, sandbox = world
    original = PayPalEmulator._detail
    victim: dict = {}

    def corrupt(r, everything):
        out = original(r, everything)
        info = out["transaction_info"]
        if info["transaction_event_code"] == "T0400" and (not victim or victim["id"] == info["transaction_id"]):
            victim["id"] = info["transaction_id"]
            info["transaction_amount"] = {"currency_code": "GBP", "value": "n/a"}
        return out

    monkeypatch.setattr(PayPalEmulator, "_detail", staticmethod(corrupt))
    running = serve(PayPalEmulator(sandbox, EmulatorConfig(time_scale=30)))
    quarantine = Quarantine("paypal")
    try:
        result = load(settings, running, quarantine)
    finally:
        running.stop()
    assert result.quarantined >= 1
    assert {(r["entity"], r["record_id"], r["reason"]) for r in quarantine.rows} == {
        ("transactions", victim["id"], "transaction_amount.value='n/a' is not a decimal amount")}
    assert loaded(settings)["withdrawals"] == truth(sandbox)["withdrawals"] - 1
