"""eBay client + dlt source against the emulator, into a temporary DuckDB: the first run finds
orders older than getOrders' 90-day reach through the Finances ledger; loaded rows are the
world's visible truth; a re-run adds nothing; `sandbox advance` brings new orders, late refunds,
payout ids and settled payouts; 10 % faults change nothing; a bad record is quarantined."""
from __future__ import annotations

import pytest

from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.ebay.emulator import EbayEmulator
from finance_pipeline.platforms.ebay.source import ebay_source
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from source_helpers import fresh, load_clean_and_faulty, load_source, query

KEYS = {"orders": "order_id", "transactions": "transaction_id, transaction_type", "payouts": "payout_id"}


def load(settings, running, quarantine: Quarantine | None = None):
    return load_source(settings, "ebay", ebay_source, running, quarantine)


def truth(sandbox: Sandbox) -> dict:
    with sandbox.connect() as con:
        row = con.execute("""
            select (select count(*) from ebay_orders where created_at <= $c),
                   (select count(*) from ebay_orders where created_at <= $c - interval 90 day),
                   (select count(*) from ebay_refunds where created_at <= $c),
                   (select count(*) from ebay_transactions where created_at <= $c),
                   (select count(*) from ebay_transactions t join ebay_payouts p using (payout_id)
                     where t.created_at <= $c and p.payout_at <= $c),
                   (select count(*) from ebay_payouts where payout_at <= $c),
                   (select count(*) from ebay_payouts where succeeded_at <= $c)""", {"c": sandbox.clock}).fetchone()
    return dict(zip(("orders", "old_orders", "refunds", "transactions", "paid_transactions", "payouts", "succeeded"), row))


def loaded(settings, clock) -> dict:
    (row,) = query(settings, f"""
        select (select count(*) from raw_ebay.orders),
               (select count(*) from raw_ebay.orders where creation_date <= '{clock.isoformat()}'::timestamptz - interval 90 day),
               (select sum(json_array_length(payment_summary -> '$.refunds')) from raw_ebay.orders),
               (select count(*) from raw_ebay.transactions),
               (select count(*) from raw_ebay.transactions where payout_id is not null),
               (select count(*) from raw_ebay.payouts),
               (select count(*) from raw_ebay.payouts where payout_status = 'SUCCEEDED')""")
    return dict(zip(("orders", "old_orders", "refunds", "transactions", "paid_transactions", "payouts", "succeeded"), row))


def duplicates(settings) -> dict:
    return {t: query(settings, f"select count(*) - count(distinct ({k})) from raw_ebay.{t}")[0][0] for t, k in KEYS.items()}


def snapshot(settings) -> dict:
    return {t: query(settings, f"select * from raw_ebay.{t} order by {k}")
            for t, k in KEYS.items()}


@pytest.fixture
def world(small_world_dir, tmp_path):
    return fresh(tmp_path, small_world_dir)


def test_source_builds_without_a_connection():
    source = ebay_source()
    assert set(source.resources) == {"orders", "transactions", "payouts"}


def test_load_rerun_and_advance(world):
    settings, sandbox = world
    running = serve(EbayEmulator(sandbox, EmulatorConfig(time_scale=30)))
    try:
        load(settings, running)
        expected = truth(sandbox)
        assert expected["old_orders"] > 50  # the backfill through the ledger is exercised
        assert loaded(settings, sandbox.clock) == expected
        load(settings, running)  # a re-run: nothing new, nothing doubled
        assert loaded(settings, sandbox.clock) == expected
        assert duplicates(settings) == {t: 0 for t in KEYS}
        sandbox.advance(24 * 30)  # a month later: new orders, late refunds, payouts landed
        load(settings, running)
        later = truth(sandbox)
        assert later["orders"] > expected["orders"] and later["refunds"] > expected["refunds"]
        assert loaded(settings, sandbox.clock) == later
        assert duplicates(settings) == {t: 0 for t in KEYS}
        # the first run used getOrders filters no older than 90 days (older orders came by id)
        assert running.emulator.counters["over_limit"] == 0
    finally:
        running.stop()


def test_faults_change_nothing(tmp_path, small_world_dir, start_emulator):
    settings, faulty_settings, faulty = load_clean_and_faulty(
        tmp_path, small_world_dir, start_emulator, EbayEmulator, load, fault_rate=0.10, fault_seed=11,
        faulty_settings={"http_max_attempts": 12})
    assert sum(faulty.emulator.faults.values()) > 0
    assert snapshot(faulty_settings) == snapshot(settings)


def test_bad_record_is_quarantined_and_the_run_goes_on(world, monkeypatch):
    settings, sandbox = world
    original = EbayEmulator._render
    victim: dict = {}

    def corrupt(self, o, *args):
        order = original(self, o, *args)
        if not victim or victim["id"] == order["orderId"]:
            victim["id"] = order["orderId"]
            order["pricingSummary"]["total"]["value"] = "12,34"
        return order

    monkeypatch.setattr(EbayEmulator, "_render", corrupt)
    running = serve(EbayEmulator(sandbox, EmulatorConfig(time_scale=30)))
    quarantine = Quarantine("ebay")
    try:
        result = load(settings, running, quarantine)
    finally:
        running.stop()
    assert result.quarantined >= 1
    reasons = {(r["entity"], r["reason"]) for r in quarantine.rows}
    assert ("orders", "total.value='12,34' is not a decimal amount") in reasons
    assert loaded(settings, sandbox.clock)["orders"] == truth(sandbox)["orders"] - 1
    (n,) = query(settings, "select count(*) from ops.quarantine where platform = 'ebay'")[0]
    assert n >= 1
