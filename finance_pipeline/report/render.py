"""The finance report as one self-contained HTML file: plotly charts (plotly.js inlined once, so
the page works from disk without a server or network) and tables a bookkeeper reads."""
from __future__ import annotations

import html
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from finance_pipeline.report.data import BUCKETS, ReportData

CHANNEL_COLOURS = ["#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6", "#a5a5a5", "#843c0c"]
AR_ROWS = 25  # customers listed in the aging table (the chart shows the first 15)
BUCKET_COLOURS = {"current": "#70ad47", "1-30": "#ffc000", "31-60": "#ed7d31", "61-90": "#c00000", "90+": "#7b0000"}


def money(x: Decimal | None, symbol: str = "£") -> str:
    if x is None:
        return "–"
    sign = "-" if x < 0 else ""
    return f"{sign}{symbol}{abs(x):,.2f}"


def _f(x: Decimal | None) -> float | None:
    """Chart coordinates only (plotly draws floats); figures in text come from the Decimal."""
    return None if x is None else float(x)


def _figure_html(fig: go.Figure, div_id: str) -> str:
    fig.update_layout(template="plotly_white", margin=dict(l=60, r=20, t=50, b=50), height=420,
                      font=dict(family="Helvetica, Arial, sans-serif", size=12))
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def _pnl_chart(d: ReportData) -> str:
    fig = go.Figure()
    channels = sorted({r["channel"] for r in d.pnl})
    months = [m["month"] for m in d.pnl_months]
    for i, ch in enumerate(channels):
        by_month = {r["month"]: r["net_sales"] for r in d.pnl if r["channel"] == ch}
        fig.add_bar(name=f"net sales · {ch}", x=months, y=[_f(by_month.get(m)) for m in months],
                    marker_color=CHANNEL_COLOURS[i % len(CHANNEL_COLOURS)])
    fig.add_scatter(name="net contribution (all channels)", x=months, y=[_f(m["net_contribution"]) for m in d.pnl_months],
                    mode="lines+markers", line=dict(color="#000000", width=2))
    fig.update_layout(barmode="stack", title="P&L by month and channel (GBP)", yaxis_title="GBP",
                      legend=dict(orientation="h", y=-0.2))
    return _figure_html(fig, "chart-pnl")


def _aging_chart(d: ReportData) -> str:
    top = d.aging[:15]
    names = [r["customer_name"] or r["customer_id"] for r in top]
    fig = go.Figure()
    cols = {"current": "current_home", "1-30": "days_1_30_home", "31-60": "days_31_60_home",
            "61-90": "days_61_90_home", "90+": "days_over_90_home"}
    for b in BUCKETS:
        fig.add_bar(name=b if b == "current" else f"{b} days", y=names, x=[_f(r[cols[b]]) for r in top],
                    orientation="h", marker_color=BUCKET_COLOURS[b])
    fig.update_layout(barmode="stack", title="Accounts receivable aging by customer (GBP, largest overdue first)",
                      xaxis_title="GBP open", yaxis=dict(autorange="reversed"), legend=dict(orientation="h", y=-0.2))
    return _figure_html(fig, "chart-ar-aging")


def _tax_chart(d: ReportData) -> str:
    fig = go.Figure()
    fig.add_bar(name="tax collected", x=[r["jurisdiction"] for r in d.tax], y=[_f(r["tax_collected_home"]) for r in d.tax],
                marker_color="#2e75b6")
    fig.add_bar(name="tax refunded", x=[r["jurisdiction"] for r in d.tax], y=[_f(-r["tax_refunded_home"]) for r in d.tax],
                marker_color="#c55a11")
    fig.add_scatter(name="net owed", x=[r["jurisdiction"] for r in d.tax], y=[_f(r["net_owed_home"]) for r in d.tax],
                    mode="markers", marker=dict(color="#000000", size=10, symbol="diamond"))
    fig.update_layout(barmode="relative", title=f"Tax owed by jurisdiction, {d.tax_period or 'no period'} (GBP)",
                      yaxis_title="GBP", legend=dict(orientation="h", y=-0.2))
    return _figure_html(fig, "chart-tax")


def _trends_chart(d: ReportData) -> str:
    fig = go.Figure()
    categories = sorted({r["category"] for r in d.trends})
    for i, cat in enumerate(categories):
        rows = [r for r in d.trends if r["category"] == cat]
        fig.add_scatter(name=f"{cat} (weekly)", x=[r["period_start"] for r in rows], y=[_f(r["net_sales_home"]) for r in rows],
                        mode="lines", stackgroup="weekly", line=dict(width=0.5, color=CHANNEL_COLOURS[i % len(CHANNEL_COLOURS)]))
    fig.add_scatter(name="28-day moving average x 7 (all)", x=[r["period_start"] for r in d.daily],
                    y=[_f(r["ma28"] * 7) if r["ma28"] is not None else None for r in d.daily],
                    mode="lines", line=dict(color="#000000", width=2, dash="dot"))
    fig.update_layout(title="Sales trends: weekly net sales by product category (GBP, ex tax, before refunds)",
                      yaxis_title="GBP per week", legend=dict(orientation="h", y=-0.2))
    return _figure_html(fig, "chart-trends")


def _payouts_chart(d: ReportData) -> str:
    fig = go.Figure()
    matched = d.payouts_total - len(d.payout_breaks)
    fig.add_bar(x=["matched", "exceptions"], y=[matched, len(d.payout_breaks)],
                marker_color=["#70ad47", "#c00000"], text=[matched, len(d.payout_breaks)], textposition="auto")
    fig.update_layout(title="Payout reconciliation: payouts matched vs exceptions", yaxis_title="payouts", showlegend=False)
    return _figure_html(fig, "chart-payouts")


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]], table_id: str, numeric_from: int = 1) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for r in rows:
        cells = []
        for i, v in enumerate(r):
            cls = ' class="num"' if i >= numeric_from else ""
            cells.append(f"<td{cls}>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _kpi(label: str, value: str, key: str, note: str = "") -> str:
    return (f'<div class="kpi"><div class="label">{html.escape(label)}</div>'
            f'<div class="value" data-figure="{key}">{html.escape(value)}</div>'
            f'<div class="note">{html.escape(note)}</div></div>')


CSS = """
body { font-family: Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1200px; padding: 24px; color: #222; }
h1 { margin-bottom: 0; } .sub { color: #666; margin-top: 4px; }
h2 { border-bottom: 2px solid #1f4e79; padding-bottom: 4px; margin-top: 40px; }
.kpis { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; }
.kpi { border: 1px solid #ddd; border-radius: 6px; padding: 12px; }
.kpi .label { color: #555; font-size: 13px; } .kpi .value { font-size: 24px; font-weight: bold; margin: 4px 0; }
.kpi .note { color: #777; font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 8px; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 4px 6px; text-align: left; } td.num { text-align: right; }
th { background: #f3f6fa; } .ok { color: #2f7d32; } .bad { color: #b00020; }
.chart { border: 1px solid #eee; border-radius: 6px; margin-top: 12px; }
"""


def render(d: ReportData, generated_at: datetime | None = None) -> str:
    generated_at = generated_at or datetime.now(timezone.utc)
    last = d.last_month
    balanced = d.gl_unbalanced_entries == 0
    kpis = "".join([
        _kpi(f"Net sales {last['month']:%B %Y}" if last else "Net sales", money(last["net_sales"] if last else None),
             "net_sales_last_month", f"{int(last['orders']):,} orders, ex tax" if last else ""),
        _kpi(f"Net contribution {last['month']:%B %Y}" if last else "Net contribution",
             money(last["net_contribution"] if last else None), "net_contribution_last_month",
             "after COGS, fees, FX and chargebacks"),
        _kpi("Owed to us (trade AR)", money(d.ar_open_home), "ar_open_home",
             f"{money(d.ar_overdue_home)} overdue; ledger AR {money(d.gl_ar_home)}"),
        _kpi(f"Tax owed {d.tax_period or ''}".strip(), money(d.tax_owed_home), "tax_owed_home",
             f"{len(d.tax)} jurisdictions; marketplace-collected tax excluded"),
        _kpi("Payout exceptions", f"{len(d.payout_breaks)} of {d.payouts_total}", "payout_exceptions",
             "payouts that do not match their transactions"),
        _kpi("Ledger", "balanced" if balanced else f"{d.gl_unbalanced_entries} unbalanced entries", "gl_status",
             f"{d.gl_entries:,} journal entries, debits = credits"),
    ])
    recent_months = set(sorted({r["month"] for r in d.pnl})[-6:])  # the table: the last six months
    pnl_table = _table(
        ["month", "channel", "gross sales", "discounts", "refunds", "net sales", "shipping", "COGS", "gross margin",
         "fees", "FX gain/loss", "chargebacks", "net contribution"],
        ([f"{r['month']:%Y-%m}", r["channel"], *(money(r[k]) for k in (
            "gross_sales", "discounts", "refunds", "net_sales", "shipping_income", "cogs", "gross_margin", "fees",
            "fx_gain_loss", "chargeback_losses", "net_contribution"))]
         for r in d.pnl if r["month"] in recent_months),
        "table-pnl", numeric_from=2)
    aging_table = _table(
        ["customer", "currency", "open", "current", "1-30", "31-60", "61-90", "90+", "days past due", "DSO",
         "last payment"],
        ([r["customer_name"] or r["customer_id"], r["currency"], money(r["open_amount_home"]), money(r["current_home"]),
          money(r["days_1_30_home"]), money(r["days_31_60_home"]), money(r["days_61_90_home"]),
          money(r["days_over_90_home"]), r["max_days_past_due"], r["dso_days"] if r["dso_days"] is not None else "–",
          r["last_payment_date"] or "–"] for r in d.aging[:AR_ROWS]),
        "table-ar", numeric_from=2)
    if len(d.aging) > AR_ROWS:
        aging_table += (f'<p class="sub">The {AR_ROWS} customers with the most overdue of {len(d.aging)} with an open '
                        f'balance; rpt_outstanding_balances has them all.</p>')
    tax_table = _table(
        ["jurisdiction", "regime", "taxable sales", "zero-rated / exempt", "tax collected", "tax refunded",
         "collected by marketplace", "net owed"],
        ([r["jurisdiction"], r["regime"], money(r["taxable_sales_home"]), money(r["zero_rated_sales_home"]),
          money(r["tax_collected_home"]), money(r["tax_refunded_home"]), money(r["marketplace_collected_tax_home"]),
          money(r["net_owed_home"])] for r in d.tax),
        "table-tax", numeric_from=2)
    if d.payout_breaks:
        breaks = _table(["channel", "payout", "date", "payout amount", "transactions net", "variance", "transactions", "reason"],
                        ([r["channel"], r["payout_id"], r["payout_date"], money(r["payout_amount"]),
                          money(r["transactions_net"]), money(r["variance"]), r["transaction_count"],
                          r["break_reason"] or ""] for r in d.payout_breaks),
                        "table-payout-exceptions", numeric_from=3)
        breaks_note = f'<p class="bad">{len(d.payout_breaks)} payout(s) need attention.</p>'
    else:
        breaks = ""
        breaks_note = f'<p class="ok" id="payouts-all-matched">All {d.payouts_total} payouts match their transactions.</p>'
    status_table = _table(["document", "status", "count", "total (GBP)"],
                          ([r["document_type"], r["payment_status"], r["documents"], money(r["total_home"])]
                           for r in d.payment_status), "table-payment-status", numeric_from=2)
    tb = _table(["account", "name", "type", "debits", "credits", "balance"],
                ([r["account_code"], r["account_name"], r["account_type"], money(r["debits"]), money(r["credits"]),
                  money(r["balance"])] for r in d.trial_balance), "table-trial-balance", numeric_from=3)
    sections = [
        ("Profit and loss by month and channel", _pnl_chart(d), pnl_table,
         "Accrual basis in GBP: sales and COGS in the order month, refunds in the refund month, fees when charged; "
         "net contribution adds realised FX and chargeback losses. Ties to the general ledger."),
        ("Accounts receivable aging", _aging_chart(d), aging_table,
         f"Open trade invoices as of {d.as_of}, in GBP at each invoice's rate, by days past the due date."),
        ("Tax owed by jurisdiction", _tax_chart(d), tax_table,
         "Per jurisdiction for the current quarter: tax on orders placed less tax refunded. "
         "Tax a marketplace collects and remits is shown but never owed."),
        ("Sales trends", _trends_chart(d), "", "Weekly net sales ex tax by product category, with the 28-day moving average."),
        ("Payout reconciliation exceptions", _payouts_chart(d), breaks_note + breaks,
         "Every payout against the balance transactions behind it."),
    ]
    body = []
    for i, (title, chart, table, note) in enumerate(sections):
        body.append(f'<section id="section-{i + 1}"><h2>{html.escape(title)}</h2><p class="sub">{html.escape(note)}</p>'
                    f'<div class="chart">{chart}</div>{table}</section>')
    body.append(f'<section id="section-status"><h2>Payment status</h2>{status_table}</section>')
    body.append(f'<section id="section-tb"><h2>Trial balance</h2><p class="sub">Every account of the general ledger; '
                f'the balances add up to zero.</p>{tb}</section>')
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Finance report as of {d.as_of}</title>
<style>{CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<h1>Finance report</h1>
<p class="sub">As of <span data-figure="as_of">{d.as_of}</span> · amounts in GBP · generated {generated_at:%Y-%m-%d %H:%M} UTC</p>
<div class="kpis">{kpis}</div>
{''.join(body)}
</body></html>
"""
