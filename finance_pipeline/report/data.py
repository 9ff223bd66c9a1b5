"""What the finance report shows, read from the marts (read-only) into plain rows.

Money stays `Decimal` here; the charts convert to floats only to draw, and every figure printed
in the report is formatted from the `Decimal`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from finance_pipeline.warehouse import WarehouseTarget, open_warehouse

ZERO = Decimal("0.00")
BUCKETS = ("current", "1-30", "31-60", "61-90", "90+")


def _rows(con: Any, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


@dataclass
class ReportData:
    as_of: date
    pnl: list[dict] = field(default_factory=list)  # month x channel
    pnl_months: list[dict] = field(default_factory=list)  # month totals
    aging: list[dict] = field(default_factory=list)  # customers with open balances
    aging_totals: dict[str, Decimal] = field(default_factory=dict)
    ar_open_home: Decimal = ZERO
    ar_overdue_home: Decimal = ZERO
    gl_ar_home: Decimal = ZERO
    tax: list[dict] = field(default_factory=list)  # current quarter by jurisdiction
    tax_period: str | None = None
    tax_owed_home: Decimal = ZERO
    trends: list[dict] = field(default_factory=list)  # weekly by category
    daily: list[dict] = field(default_factory=list)  # daily net sales and moving averages (all channels)
    payouts_total: int = 0
    payout_breaks: list[dict] = field(default_factory=list)
    payment_status: list[dict] = field(default_factory=list)
    last_month: dict | None = None
    gl_entries: int = 0
    gl_unbalanced_entries: int = 0
    trial_balance: list[dict] = field(default_factory=list)


def load(warehouse: WarehouseTarget) -> ReportData:
    """The report's figures from the warehouse `warehouse` names: the DuckDB file or the
    PostgreSQL server (`PostgresSettings`).  The queries are written in what both engines share."""
    con = open_warehouse(warehouse, read_only=True)
    try:
        return _load(con)
    finally:
        con.close()


def _load(con: Any) -> ReportData:
    as_of = con.execute("select max(as_of_date) from marts.rpt_ar_invoice_detail").fetchone()[0]
    if as_of is None:
        as_of = con.execute("select cast(max(posted_on) as date) from marts.fct_gl_entries").fetchone()[0]
    d = ReportData(as_of=as_of)
    d.pnl = _rows(con, """
        select month, channel, gross_sales, discounts, refunds, net_sales, shipping_income, cogs, gross_margin,
               fees, fx_gain_loss, chargeback_losses, net_contribution
        from marts.rpt_profit_and_loss order by month, channel""")
    d.pnl_months = _rows(con, """
        select month, sum(net_sales) as net_sales, sum(gross_margin) as gross_margin, sum(fees) as fees,
               sum(fx_gain_loss) as fx_gain_loss, sum(net_contribution) as net_contribution,
               cast(sum(orders) as bigint) as orders
        from marts.rpt_profit_and_loss group by month order by month""")
    complete = [m for m in d.pnl_months if m["month"] < as_of.replace(day=1)]
    d.last_month = complete[-1] if complete else (d.pnl_months[-1] if d.pnl_months else None)

    d.aging = _rows(con, """
        select customer_id, customer_name, currency, open_amount_home, current_home, days_1_30_home,
               days_31_60_home, days_61_90_home, days_over_90_home, unapplied_credit_home, max_days_past_due,
               dso_days, last_payment_date
        from marts.rpt_outstanding_balances where open_amount_home <> 0
        order by days_over_90_home + days_61_90_home desc, open_amount_home desc, customer_id""")
    totals = _rows(con, """
        select coalesce(sum(current_home), 0) as "current", coalesce(sum(days_1_30_home), 0) as "1-30",
               coalesce(sum(days_31_60_home), 0) as "31-60", coalesce(sum(days_61_90_home), 0) as "61-90",
               coalesce(sum(days_over_90_home), 0) as "90+", coalesce(sum(open_amount_home), 0) as open_home,
               coalesce(sum(overdue_amount_home), 0) as overdue_home
        from marts.rpt_outstanding_balances""")[0]
    d.aging_totals = {b: totals[b] for b in BUCKETS}
    d.ar_open_home, d.ar_overdue_home = totals["open_home"], totals["overdue_home"]
    d.gl_ar_home = con.execute(
        "select coalesce(sum(amount_home), 0) from marts.fct_gl_entries where account_code = '1200'").fetchone()[0]

    d.tax_period = con.execute(
        "select max(period) from marts.rpt_tax_obligations where period_start <= ?", [as_of]).fetchone()[0]
    d.tax = _rows(con, """
        select jurisdiction, regime, period, taxable_sales_home, zero_rated_sales_home, tax_collected_home,
               tax_refunded_home, marketplace_collected_tax_home, net_owed_home
        from marts.rpt_tax_obligations where period = ? order by net_owed_home desc, jurisdiction""", [d.tax_period])
    d.tax_owed_home = sum((r["net_owed_home"] for r in d.tax), ZERO)

    d.trends = _rows(con, """
        select period_start, category, sum(net_sales_home) as net_sales_home, cast(sum(orders) as bigint) as orders,
               cast(sum(units) as bigint) as units, sum(metres) as metres
        from marts.rpt_sales_trends where grain = 'week' group by period_start, category
        order by period_start, category""")
    d.daily = _rows(con, """
        select period_start, sum(net_sales_home) as net_sales_home, sum(moving_avg_7d_home) as ma7,
               sum(moving_avg_28d_home) as ma28
        from marts.rpt_sales_trends where grain = 'day' group by period_start order by period_start""")

    d.payouts_total = con.execute("select count(*) from marts.rpt_payout_reconciliation").fetchone()[0]
    d.payout_breaks = _rows(con, """
        select channel, payout_id, payout_date, payout_amount, transactions_net, variance, transaction_count, break_reason
        from marts.rpt_payout_reconciliation where reconciliation_status <> 'matched'
        order by payout_date desc, channel, payout_id""")
    d.payment_status = _rows(con, """
        select payment_status, document_type, count(*) as documents, sum(total_amount_home) as total_home
        from marts.rpt_payment_status group by payment_status, document_type
        order by document_type, documents desc, payment_status""")
    d.gl_entries, d.gl_unbalanced_entries = con.execute("""
        select count(*), count(*) filter (where debits <> credits) from (
            select entry_id, sum(debit_home) as debits, sum(credit_home) as credits
            from marts.fct_gl_entries group by entry_id) as entries""").fetchone()
    d.trial_balance = _rows(con, """
        select account_code, max(account_name) as account_name, max(account_type) as account_type,
               sum(debit_home) as debits, sum(credit_home) as credits, sum(amount_home) as balance
        from marts.fct_gl_entries group by account_code order by account_code""")
    return d
