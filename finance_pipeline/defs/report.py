"""The finance report as a Dagster asset: a self-contained HTML page under data/reports/, rebuilt
by the daily close after the marts (and by `finance-pipeline report` from the shell)."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from finance_pipeline.defs.common import WAREHOUSE_POOL
from finance_pipeline.settings import get_settings

REPORT_KEY = AssetKey(["reports", "finance_report"])
REPORT_MARTS = ["rpt_profit_and_loss", "rpt_outstanding_balances", "rpt_ar_invoice_detail", "rpt_tax_obligations",
                "rpt_sales_trends", "rpt_payout_reconciliation", "rpt_payment_status", "fct_gl_entries"]


@asset(
    key=REPORT_KEY,
    deps=[AssetKey(["marts", m]) for m in REPORT_MARTS],
    group_name="report",
    # it only reads, but a read-only DuckDB connection still conflicts with another process writing
    # (on the Postgres warehouse the pool is not needed, but one pool for both keeps runs alike)
    pool=WAREHOUSE_POOL,
    kinds={"html", "plotly"},
    description=(
        "The finance report: P&L by month and channel, receivables aging, tax owed per jurisdiction, "
        "sales trends and payout reconciliation exceptions, with charts, as one HTML file under "
        "data/reports/ that opens without a server."
    ),
)
def finance_report(context: AssetExecutionContext) -> MaterializeResult:
    from finance_pipeline.report import build_report, money

    settings = get_settings()
    result = build_report(settings.warehouse_target, settings.data_dir / "reports")
    d = result.data
    context.log.info(f"finance report written to {result.path}")
    return MaterializeResult(metadata={
        "path": MetadataValue.path(str(result.path)),
        "as_of": str(d.as_of),
        "ar_open_home": money(d.ar_open_home),
        "tax_owed_home": f"{money(d.tax_owed_home)} ({d.tax_period})",
        "payout_exceptions": len(d.payout_breaks),
        "gl_unbalanced_entries": d.gl_unbalanced_entries,
    })


report_assets = [finance_report]
