"""Client + dlt source end to end against the emulator, into a temporary DuckDB: the loaded rows
are the world's visible truth; re-runs add nothing; moving the clock brings new orders, edits,
late refunds and payouts; faults change nothing; the client never trips the rate limit; a bad
record is quarantined and the run goes on."""
from __future__ import annotations

import shutil

import duckdb
import pytest

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.shopify import source as shopify_source_module
from finance_pipeline.platforms.shopify.emulator import ShopifyEmulator
from finance_pipeline.platforms.shopify.source import shopify_source
from finance_pipeline.sandbox.store import Sandbox
from tests.conftest import make_settings

TABLES = ("orders", "order_transactions", "payouts", "balance_transactions")


class StandardPlanShopify(ShopifyEmulator):
    plan = "standard"


def load(settings, running, quarantine: Quarantine | None = None):
    quarantine = quarantine if quarantine is not None else Quarantine("shopify")
    connection = Connection("shopify", running.url, running.emulator.credentials(), settings)
    return run_platform(settings, "shopify", shopify_source(connection, quarantine), quarantine)


def query(settings, sql: str):
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def truth(sandbox: Sandbox) -> dict[str, int]:
    """What the API should show at the sandbox clock, counted from the world's truth tables."""
    con = sandbox.connect()
    try:
        return dict(zip(
            ("orders", "lines", "refunds", "payouts", "balance_transactions", "pending", "order_transactions"),
            con.execute("""
                select
                  (select count(*) from shopify_orders where created_at <= $c),
                  (select count(*) from shopify_order_lines l join shopify_orders o using (order_id)
                    where o.created_at <= $c and coalesce(l.added_at, o.created_at) <= $c),
                  (select count(*) from shopify_refunds where created_at <= $c),
                  (select count(*) from shopify_payouts where visible_at <= $c),
                  (select count(*) from shopify_balance_transactions where processed_at <= $c),
                  (select count(*) from shopify_balance_transactions b left join shopify_payouts p using (payout_id)
                    where b.processed_at <= $c and not coalesce(p.visible_at <= $c, false)),
                  -- every transaction of the orders a gift card paid for (scenario S12)
                  (select count(*) from shopify_transactions t join shopify_orders o using (order_id)
                    where t.created_at <= $c and o.created_at <= $c and t.order_id in (
                      select order_id from shopify_transactions where gateway = 'gift_card' and created_at <= $c))
            """, {"c": sandbox.clock}).fetchone()))
    finally:
        con.close()


def loaded(settings) -> dict[str, int]:
    (row,) = query(settings, """
        select
          (select count(*) from raw_shopify.orders),
          (select sum(json_array_length(line_items)) from raw_shopify.orders),
          (select sum(json_array_length(refunds)) from raw_shopify.orders),
          (select count(*) from raw_shopify.payouts),
          (select count(*) from raw_shopify.balance_transactions),
          (select count(*) from raw_shopify.balance_transactions where payout_status = 'pending'),
          (select count(*) from raw_shopify.order_transactions)
    """)
    return dict(zip(("orders", "lines", "refunds", "payouts", "balance_transactions", "pending", "order_transactions"),
                    row))


def duplicates(settings) -> dict[str, int]:
    return {t: query(settings, f"select count(*) - count(distinct id) from raw_shopify.{t}")[0][0] for t in TABLES}


def snapshot(settings) -> dict[str, list]:
    """Every loaded row, without dlt's bookkeeping columns (load ids differ between loads)."""
    out = {}
    for table in TABLES:
        cols = [r[0] for r in query(settings, "select column_name from information_schema.columns where "
                                              f"table_schema = 'raw_shopify' and table_name = '{table}' "
                                              "order by ordinal_position") if not r[0].startswith("_dlt")]
        quoted = ", ".join(f'"{c}"' for c in cols)  # a transaction has an `authorization` column
        out[table] = query(settings, f"select {quoted} from raw_shopify.{table} order by id")
    return out


def test_source_builds_without_a_connection():
    source = shopify_source(None)
    assert source.name == "shopify"
    assert set(source.resources) == set(TABLES)
    assert source.resources["orders"].write_disposition == "merge"
    with pytest.raises(Exception, match="without a connection"):
        list(source.resources["payouts"])


def test_load_rerun_and_advance(settings, sandbox, start_emulator):
    running = start_emulator(ShopifyEmulator, sandbox, time_scale=settings.time_scale)

    # (a) the first load is the world's visible truth
    result = load(settings, running)
    assert result.quarantined == 0
    expected = truth(sandbox)
    assert loaded(settings) == expected
    assert expected["pending"] > 0  # some balance transactions await their payout
    (row,) = query(settings, "select min(updated_at), max(updated_at), count(*) filter (where payment_terms is not null) "
                             "from raw_shopify.orders")
    assert row[0].tzinfo is not None and row[2] > 0
    money = query(settings, "select total_price, total_price_set from raw_shopify.orders limit 1")[0]
    assert isinstance(money[0], str) and '"presentment_money"' in money[1]

    # (b) a re-run at the same clock adds nothing and asks only for the lookback window
    requests = running.emulator.counters["requests"]
    load(settings, running)
    assert loaded(settings) == expected
    assert duplicates(settings) == {t: 0 for t in TABLES}
    assert running.emulator.counters["requests"] - requests <= 5

    # (c) a month later: new orders, edits (added lines), late refunds, payouts; pending settle
    old_clock = sandbox.clock
    sandbox.advance(hours=24 * 30)
    con = sandbox.connect()
    try:
        edits, late_refunds, settled = con.execute("""
            select
              (select count(*) from shopify_order_lines l join shopify_orders o using (order_id)
                where l.added_at > $old and l.added_at <= $new and o.created_at <= $old),
              (select count(*) from shopify_refunds r join shopify_orders o using (order_id)
                where r.created_at > $old and r.created_at <= $new and o.created_at < $old - interval 30 day),
              (select count(*) from shopify_balance_transactions b join shopify_payouts p using (payout_id)
                where b.processed_at <= $old and p.visible_at > $old and p.visible_at <= $new)
        """, {"old": old_clock, "new": sandbox.clock}).fetchone()
    finally:
        con.close()
    assert edits > 0 and late_refunds > 0 and settled > 0
    load(settings, running)
    after = truth(sandbox)
    assert after["orders"] > expected["orders"]
    assert loaded(settings) == after
    assert duplicates(settings) == {t: 0 for t in TABLES}
    # every balance transaction carries the payout that is visible for it now
    con = sandbox.connect()
    try:
        want = dict(con.execute("""
            select b.bt_id, case when p.visible_at <= $c then b.payout_id end
            from shopify_balance_transactions b left join shopify_payouts p using (payout_id)
            where b.processed_at <= $c""", {"c": sandbox.clock}).fetchall())
    finally:
        con.close()
    assert dict(query(settings, "select id, payout_id from raw_shopify.balance_transactions")) == want


def test_faults_change_nothing(settings, sandbox, small_world_dir, tmp_path, start_emulator):
    clean = start_emulator(ShopifyEmulator, sandbox, time_scale=settings.time_scale)
    load(settings, clean)

    faulty_settings = make_settings(tmp_path / "faulty", fault_rate=0.1)
    shutil.copytree(small_world_dir / "sandbox", faulty_settings.sandbox_dir)
    faulty = start_emulator(ShopifyEmulator, Sandbox(faulty_settings.sandbox_dir), time_scale=30,
                            fault_rate=0.1, fault_seed=23)
    # smaller pages: more requests, so more faults of every kind
    original = shopify_source_module.PAGE_SIZE
    shopify_source_module.PAGE_SIZE = 100
    try:
        load(faulty_settings, faulty)
    finally:
        shopify_source_module.PAGE_SIZE = original
    faults = faulty.emulator.faults
    assert faults["duplicate_page"] >= 1 and len(faults) >= 4, faults  # this seed hits most kinds
    assert snapshot(faulty_settings) == snapshot(settings)


def test_client_stays_under_the_standard_plan_limit(settings, sandbox, start_emulator, monkeypatch):
    running = start_emulator(StandardPlanShopify, sandbox, time_scale=settings.time_scale)
    monkeypatch.setattr(shopify_source_module, "PAGE_SIZE", 25)  # ~180 calls against a 40-call bucket
    load(settings, running)
    assert running.emulator.counters["requests"] > 150
    assert running.emulator.counters["over_limit"] == 0
    assert loaded(settings) == truth(sandbox)


def test_bad_record_is_quarantined_and_the_run_goes_on(settings, sandbox, start_emulator, monkeypatch):
    running = start_emulator(ShopifyEmulator, sandbox, time_scale=settings.time_scale)
    emulator = running.emulator
    victims: dict[int, tuple[str, str]] = {}
    render = emulator.render_orders

    def corrupted(ids, clock=None):
        orders = render(ids, clock)
        for order in orders:
            if not victims:
                victims[order["id"]] = ("total_price", "12,50")
            elif len(victims) == 1 and order["id"] not in victims:
                victims[order["id"]] = ("presentment_currency", "XXX")
            if order["id"] in victims:
                field, value = victims[order["id"]]
                order[field] = value
        return orders

    monkeypatch.setattr(emulator, "render_orders", corrupted)
    quarantine = Quarantine("shopify")
    result = load(settings, running, quarantine)
    assert result.quarantined == 2
    reasons = {int(r["record_id"]): r["reason"] for r in quarantine.rows}
    assert set(reasons) == set(victims)
    assert any("total_price='12,50' is not a decimal amount" in r for r in reasons.values())
    assert any("presentment_currency='XXX'" in r for r in reasons.values())
    assert loaded(settings)["orders"] == truth(sandbox)["orders"] - 2
    stored = query(settings, "select entity, record_id, reason from ops.quarantine order by record_id")
    assert {(e, int(i)) for e, i, _ in stored} == {("orders", v) for v in victims}
