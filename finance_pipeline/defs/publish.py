"""Write-back assets: ledgers and BI tools, downstream of the marts."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from finance_pipeline.defs.common import WAREHOUSE_POOL
from finance_pipeline.settings import get_settings


@asset(
    key=AssetKey(["publish", "xero_trade_invoices"]),
    deps=[AssetKey(["marts", "fct_invoices"]), AssetKey(["marts", "fct_invoice_lines"])],
    group_name="publish",
    pool=WAREHOUSE_POOL,
    kinds={"xero"},
    description=(
        "Trade invoices in Xero: contacts upserted, one ACCREC invoice per trade order (reference = "
        "order name, due date from the terms), updated when the order changes, voided when it is "
        "cancelled. Idempotent through ops.publish_ledger; read back and compared with the marts."
    ),
)
def xero_trade_invoices(context: AssetExecutionContext) -> MaterializeResult:
    from finance_pipeline.platforms.xero.publish import publish_trade_invoices
    from finance_pipeline.sandbox.runtime import connection

    settings = get_settings()
    result = publish_trade_invoices(settings, connection(settings, "xero"), settings.warehouse_path)
    summary = result.summary()
    context.log.info(f"Xero trade invoices: {summary}")
    mismatches = result.mismatches
    if mismatches:
        context.log.error(f"Xero read-back differs from the marts for {len(mismatches)} invoice(s): {mismatches[:5]}")
    return MaterializeResult(metadata={
        **{k: v for k, v in summary.items() if isinstance(v, (int, str))},
        "mismatches": len(mismatches),
        "read_back": MetadataValue.text("clean" if not mismatches else f"{len(mismatches)} mismatches"),
    })


publish_assets = [xero_trade_invoices]
