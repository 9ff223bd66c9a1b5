"""The ledger marts on a multi-currency small world: general ledger, tax obligations, payment
status, sales trends, receivable detail, and the P&L / outstanding-balance columns they feed.

Every row equals the oracle (finance_pipeline/sandbox/oracle_ledger.py, plain Python) to the cent;
the identities hold when queried directly; and the dbt identity tests fail when a GL line is
dropped from a copy of the warehouse."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from finance_pipeline.sandbox.store import Sandbox
from tests.pipeline_helpers import compare_with_oracle, run_job

DBT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
LEDGER_MARTS = ["fct_gl_entries", "rpt_tax_obligations", "rpt_payment_status", "rpt_sales_trends",
                "rpt_ar_invoice_detail", "rpt_profit_and_loss", "rpt_outstanding_balances"]
IDENTITY_TESTS = ["assert_gl_entries_balance", "assert_gl_balances_per_day", "assert_pnl_ties_to_gl",
                  "assert_tax_ties_to_gl", "assert_clearing_ties_to_balance_transactions",
                  "assert_gift_card_liability_ties", "assert_tax_rounding_ties"]


@pytest.fixture(scope="module")
def warehouse(small_world_dir, tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("ledger")
    shutil.copytree(small_world_dir / "sandbox", data / "sandbox")
    run_job(data, job="hourly_sync")
    return data


def _q(path: Path, sql: str, params=None):
    con = duckdb.connect(str(path / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_ledger_marts_equal_the_oracle(warehouse):
    problems = compare_with_oracle(warehouse / "warehouse.duckdb", Sandbox(warehouse / "sandbox"))
    assert problems == {}
    counts = {m: _q(warehouse, f"select count(*) from marts.{m}")[0][0] for m in LEDGER_MARTS}
    assert all(n > 0 for n in counts.values()), counts


def test_the_world_is_multi_currency_and_the_ledger_covers_every_event(warehouse):
    currencies = {r[0] for r in _q(warehouse, "select distinct currency from marts.fct_orders")}
    assert {"GBP", "EUR", "USD", "AUD"} <= currencies
    kinds = {r[0] for r in _q(warehouse, "select distinct source_type from marts.fct_gl_entries")}
    assert {"order", "refund", "payment", "payment_refund", "fee", "dispute", "payout",
            "settlement_difference"} <= kinds
    # every non-void order, refund and paid payout has its entry
    missing = _q(warehouse, """
        select 'order', count(*) from marts.fct_orders o where not is_void and not exists (
            select 1 from marts.fct_gl_entries g where g.entry_id = 'order:' || o.channel || ':' || o.order_id)
        union all
        select 'refund', count(*) from marts.fct_refunds r where not exists (
            select 1 from marts.fct_gl_entries g where g.entry_id = 'refund:' || r.channel || ':' || r.refund_id)
        union all
        select 'payout', count(*) from marts.fct_payouts p where status = 'paid' and not exists (
            select 1 from marts.fct_gl_entries g where g.entry_id = 'payout:' || p.channel || ':' || p.payout_id)""")
    assert all(n == 0 for _, n in missing), missing


def test_identities_hold(warehouse):
    # debits = credits for every entry and every day, and the trial balance is zero
    assert _q(warehouse, """select count(*) from (select entry_id from marts.fct_gl_entries group by entry_id
                            having sum(debit_home) <> sum(credit_home))""")[0][0] == 0
    assert _q(warehouse, """select count(*) from (select posted_on from marts.fct_gl_entries group by posted_on
                            having sum(debit_home) <> sum(credit_home))""")[0][0] == 0
    assert _q(warehouse, "select sum(amount_home) from marts.fct_gl_entries")[0][0] == 0
    # the P&L's net contribution is the GL's result (income and expense accounts), month by month
    diff = _q(warehouse, """
        with gl as (select date_trunc('month', posted_on) as month, -sum(amount_home) as result
                    from marts.fct_gl_entries where account_type in ('revenue', 'expense') group by 1),
             pnl as (select month, sum(net_contribution) as result from marts.rpt_profit_and_loss group by 1)
        select count(*) from gl full outer join pnl using (month) where gl.result is distinct from pnl.result""")
    assert diff[0][0] == 0
    # AR in the GL = invoiced - paid - credits of every trade invoice (GBP at the invoice rate)
    ar = _q(warehouse, """
        select count(*) filter (where gl_ar_balance_home <> open_amount_home),
               count(*) filter (where status <> 'voided' and open_amount <> invoiced_amount - credit_note_amount - paid_amount),
               sum(open_amount_home)
        from marts.rpt_ar_invoice_detail""")[0]
    assert ar[0] == 0 and ar[1] == 0 and ar[2] > 0
    # Shopify's paid-at-checkout orders settle in shop money (GBP) whatever the order currency: once
    # paid they leave nothing in AR (the conversion residues are swept to FX / rounding)
    residue = _q(warehouse, """
        select count(*), count(*) filter (where bal <> 0) from (
            select g.document_channel, g.document_id, sum(g.amount_home) as bal
            from marts.fct_gl_entries g
            join marts.rpt_payment_status s on s.channel = g.document_channel and s.order_id = g.document_id
            where g.account_code = '1200' and s.document_type = 'order' and s.channel = 'shopify'
              and s.currency <> 'GBP' group by all)""")
    assert residue[0][0] > 100 and residue[0][1] == 0
    # tax owed per jurisdiction = the movement of the tax payable accounts
    tax = _q(warehouse, """
        select (select sum(net_owed_home) from marts.rpt_tax_obligations),
               (select -sum(amount_home) from marts.fct_gl_entries where jurisdiction is not null),
               (select -sum(amount_home) from marts.fct_gl_entries where account_code in ('2200', '2210', '2220', '2230', '2290'))""")[0]
    assert tax[0] == tax[1] == tax[2] and tax[0] > 0


def test_foreign_invoices_realise_fx_and_home_currency_ones_do_not(warehouse):
    rows = _q(warehouse, """
        select i.currency, count(*), sum(abs(g.amount_home))
        from marts.fct_gl_entries g
        join intermediate.int_gl_settlements s
          on g.entry_id = s.source_type || ':' || s.channel || ':' || s.source_id
        join marts.fct_invoices i on i.invoice_number = s.invoice_number
        where g.account_code in ('7100', '7900')
        group by 1""")
    by_ccy = {r[0]: (r[1], r[2]) for r in rows}
    assert "GBP" not in by_ccy  # GBP invoices settle at their own amount
    assert {"EUR", "USD", "AUD"} & set(by_ccy)
    # a fully paid foreign invoice: reliefs add up to its GBP total; FX = what the processor paid - that total
    paid = _q(warehouse, """
        select i.invoice_number, i.total_amount_home, sum(s.relief_home), sum(s.amount_home)
        from marts.fct_invoices i join intermediate.int_gl_settlements s using (invoice_number)
        where i.status = 'paid' and i.currency <> 'GBP'
        group by all""")
    assert paid
    for number, total_home, relief, received in paid:
        assert relief == total_home, number
        fx = _q(warehouse, """select coalesce(-sum(g.amount_home), 0) from marts.fct_gl_entries g
                              join intermediate.int_gl_settlements s
                                on g.entry_id = s.source_type || ':' || s.channel || ':' || s.source_id
                              where s.invoice_number = ? and g.account_code = '7100'""", [number])[0][0]
        assert fx == received - total_home, number


def test_payment_status_and_trends_tell_the_cases_apart(warehouse):
    statuses = dict(_q(warehouse, "select payment_status, count(*) from marts.rpt_payment_status group by 1"))
    for s in ("paid", "refunded", "partially_refunded", "overdue", "cancelled", "unpaid"):
        assert statuses.get(s, 0) > 0, (s, statuses)
    assert sum(statuses.values()) == _q(warehouse, "select count(*) from marts.fct_orders")[0][0]
    evidence = _q(warehouse, """select evidence from marts.rpt_payment_status
                                where payment_status = 'paid' and document_type = 'invoice'
                                  and channel = 'shopify' limit 1""")[0][0]  # ledger channels name bank payments
    assert "paid by ch_" in evidence
    fabric = _q(warehouse, """select sum(units), sum(metres) from marts.rpt_sales_trends
                              where grain = 'month' and category = 'fabric'""")[0]
    assert fabric[1] == Decimal(fabric[0]) / 10 and fabric[1] > 0
    # the same total at every grain
    totals = dict(_q(warehouse, "select grain, sum(net_sales_home) from marts.rpt_sales_trends group by 1"))
    lines = _q(warehouse, "select sum(net_amount_home) from marts.fct_order_lines where not is_void")[0][0]
    assert totals["day"] == totals["week"] == totals["month"] == lines


def _dbt_test(data: Path, tmp: Path, select: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "FINANCE_WAREHOUSE_PATH": str(data / "warehouse.duckdb"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    dbt = Path(sys.executable).with_name("dbt")
    return subprocess.run(
        [str(dbt), "test", "--select", *select, "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
         "--target-path", str(tmp / "target"), "--log-path", str(tmp / "logs")],
        env=env, capture_output=True, text=True, timeout=300)


def _failed_after_dropping(warehouse: Path, tmp_path: Path, source_type: str, account: str) -> set[str]:
    """Delete the first `source_type` entry's line on `account` from a copy of the warehouse, run the
    identity tests on it, and return the ones that failed."""
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(warehouse / "warehouse.duckdb", broken / "warehouse.duckdb")
    con = duckdb.connect(str(broken / "warehouse.duckdb"))
    try:
        entry = con.execute("""select entry_id from marts.fct_gl_entries where source_type = ? and account_code = ?
                               order by entry_id limit 1""", [source_type, account]).fetchone()[0]
        con.execute("delete from marts.fct_gl_entries where entry_id = ? and account_code = ?", [entry, account])
    finally:
        con.close()
    done = _dbt_test(broken, tmp_path / "broken-run", IDENTITY_TESTS)
    assert done.returncode != 0, done.stdout[-3000:]
    return {name for name in IDENTITY_TESTS if f"FAIL 1 {name}" in done.stdout}


def test_dropping_a_gl_line_fails_the_identity_tests(warehouse, tmp_path):
    intact = _dbt_test(warehouse, tmp_path / "intact", IDENTITY_TESTS)
    assert intact.returncode == 0, intact.stdout[-3000:]
    assert f"PASS={len(IDENTITY_TESTS)}" in intact.stdout
    # one sale dropped: that entry no longer balances, nor does its day, and the P&L no longer ties
    assert _failed_after_dropping(warehouse, tmp_path, "order", "4000") == {
        "assert_gl_entries_balance", "assert_gl_balances_per_day", "assert_pnl_ties_to_gl"}


def _world(warehouse: Path, sql: str):
    sandbox = Sandbox(warehouse / "sandbox")
    con = sandbox.connect()
    try:
        return con.execute(sql, {"clock": sandbox.clock}).fetchall()
    finally:
        con.close()


def test_gift_cards_are_a_liability_until_spent(warehouse):
    """Scenario S12: a gift card sold is a liability (2400), not revenue; spending it moves that
    liability to the order's sales and VAT; the card part never reaches Shopify Payments."""
    (sold_n, sold), = _world(warehouse, "select count(*), sum(initial_value) from shopify_gift_cards where created_at <= $clock")
    (spent_n, spent), = _world(warehouse, """select count(*), sum(amount) from shopify_transactions
                                             where gateway = 'gift_card' and created_at <= $clock""")
    (partly_used,), = _world(warehouse, """
        select count(*) from (
            select g.gift_card_id, g.initial_value, sum(t.amount) as used from shopify_gift_cards g
            join shopify_transactions t on t.gift_card_id = g.gift_card_id and t.created_at <= $clock
            where g.created_at <= $clock group by all having sum(t.amount) < g.initial_value) as c""")
    assert sold_n >= 5 and spent_n >= 5 and partly_used >= 1
    # the liability is what was sold less what was spent, to the cent, and nowhere else
    (liability,), = _q(warehouse, "select -sum(amount_home) from marts.fct_gl_entries where account_code = '2400'")
    assert liability == sold - spent
    assert _q(warehouse, "select sum(gift_card_amount_home) from marts.fct_orders")[0][0] == sold
    # no revenue, VAT or COGS on a gift-card-only sale; the card lines are not sales lines
    card_only = _q(warehouse, """
        select o.order_id from marts.fct_orders o where o.gift_card_amount > 0 and o.gross_amount = 0""")
    assert card_only
    accounts = {r[0] for r in _q(warehouse, f"""
        select distinct account_code from marts.fct_gl_entries where source_type = 'order' and channel = 'shopify'
        and source_id in ({', '.join(f"'{r[0]}'" for r in card_only)})""")}
    assert accounts == {"1200", "2400"}
    assert _q(warehouse, "select count(*) from marts.fct_order_lines where sku = 'GIFT-CARD'")[0][0] == 0
    # spending: paid out of 2400, not Shopify Payments clearing; wholly and partly card-paid orders are paid
    status = _q(warehouse, """
        select s.payment_status, p.payment_id, exists (select 1 from marts.fct_payments c where c.channel = 'shopify'
                   and c.order_id = p.order_id and c.processor = 'shopify_payments') as card_too
        from marts.fct_payments p join marts.rpt_payment_status s on s.channel = p.channel and s.order_id = p.order_id
        where p.processor = 'gift_card'""")
    assert len(status) == spent_n and {r[0] for r in status} == {"paid"}
    assert {r[2] for r in status} == {True, False}  # some wholly, some partly paid by a card
    evidence = _q(warehouse, """
        select count(*) from marts.fct_payments p join marts.rpt_payment_status s using (channel, order_id)
        where p.processor = 'gift_card' and position(p.payment_id in s.payment_ids) = 0""")[0][0]
    assert evidence == 0
    held = _q(warehouse, """
        select distinct g.account_code from marts.fct_gl_entries g join marts.fct_payments p
          on g.entry_id = 'payment:shopify:' || p.payment_id
        where p.processor = 'gift_card' and g.debit_home > 0""")
    assert held == [("2400",)]
    # Shopify Payments payouts still reconcile exactly
    assert _q(warehouse, """select count(*) from marts.rpt_payout_reconciliation
                            where channel = 'shopify' and variance <> 0""")[0][0] == 0


def test_dropping_a_gift_card_redemption_fails_the_identity_tests(warehouse, tmp_path):
    assert _failed_after_dropping(warehouse, tmp_path, "payment", "2400") == {
        "assert_gl_entries_balance", "assert_gl_balances_per_day", "assert_gift_card_liability_ties"}


def test_tax_rounded_per_order_goes_to_the_rounding_account(warehouse):
    """Scenario S13: where Shopify rounded an order's tax once (order-level `tax_lines`) rather than
    per line, the order's tax owed is the order-level figure and the cent or two its line tax lines
    add up to beyond it is in 7900 Rounding differences, on the order's entry, to the cent."""
    world = {r[0]: r[1:] for r in _world(warehouse, """
        select t.order_id::varchar,
               sum(t.amount_shop) filter (where t.owner <> 'order') - sum(t.amount_shop) filter (where t.owner = 'order'),
               sum(t.amount) filter (where t.owner = 'order'), sum(t.amount_shop) filter (where t.owner = 'order'),
               any_value(o.currency)
          from shopify_tax_lines t join shopify_orders o using (order_id)
         where o.created_at <= $clock and t.order_id in (select order_id from shopify_tax_lines where owner = 'order')
         group by 1""")}
    # the small world has such orders, in more than one currency, rounded both ways
    assert len(world) >= 20, len(world)
    assert {w[0] > 0 for w in world.values()} == {True, False}
    assert len({w[3] for w in world.values()}) >= 2
    # the mart's order tax is the order-level figure; the difference is its own column
    orders = {r[0]: r[1:] for r in _q(warehouse, """
        select order_id, tax_amount, tax_amount_home, tax_rounding_amount_home, is_void from marts.fct_orders
        where channel = 'shopify' and (tax_rounding_amount <> 0 or tax_rounding_amount_home <> 0)""")}
    assert set(orders) == set(world)
    for oid, (tax, tax_home, rounding_home, _) in orders.items():
        assert (tax, tax_home, rounding_home) == (world[oid][1], world[oid][2], world[oid][0]), oid
    # every difference is on 7900 on its order's entry, and they sum to the cent
    gl = dict(_q(warehouse, """
        select source_id, sum(amount_home) from marts.fct_gl_entries
        where source_type = 'order' and channel = 'shopify' and account_code = '7900'
          and description like 'Tax rounding%' group by 1"""))
    live = {oid: world[oid][0] for oid, o in orders.items() if not o[3] and world[oid][0] != 0}
    assert gl == {oid: -d for oid, d in live.items()}
    assert sum(gl.values()) == -sum(live.values()) != 0
    # the P&L shows the rounding account whole (tax rounding and settlement rounding)
    (pnl,), = _q(warehouse, "select sum(rounding) from marts.rpt_profit_and_loss where channel = 'shopify'")
    (gl_rounding,), = _q(warehouse, """select -sum(amount_home) from marts.fct_gl_entries
                                       where channel = 'shopify' and account_code = '7900'""")
    assert pnl == gl_rounding


def test_dropping_a_tax_rounding_line_fails_the_identity_tests(warehouse, tmp_path):
    assert _failed_after_dropping(warehouse, tmp_path, "order", "7900") == {
        "assert_gl_entries_balance", "assert_gl_balances_per_day", "assert_pnl_ties_to_gl", "assert_tax_rounding_ties"}
