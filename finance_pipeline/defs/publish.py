"""Write-back assets: ledgers and BI tools, downstream of the marts."""

from typing import Callable, Sequence

from dagster import (
    AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetKey, AssetsDefinition,
    MaterializeResult, MetadataValue, asset,
)

from finance_pipeline.defs.common import WAREHOUSE_POOL
from finance_pipeline.settings import get_settings

READ_BACK_CHECK = "read_back_matches_marts"


def ledger_publisher_asset(destination: str, name: str, publish_ref: str, *, deps: Sequence[str],
                           description: str, title: str) -> AssetsDefinition:
    """A publish asset for one destination, the same for every ledger publisher:

    - off unless `FINANCE_DESTINATIONS` (or the sandbox default) switches the destination on;
    - `FINANCE_PUBLISH_DRY_RUN=1` runs it in dry-run mode (nothing written; the plan in the metadata);
    - the publisher's read-back comparison becomes the asset check `read_back_matches_marts`.

    `publish_ref` is "module:function" with `function(settings, connection, warehouse_path, *,
    dry_run: bool) -> PublishResult` (imported at run time, so definitions stay cheap).
    """
    key = AssetKey(["publish", name])

    @asset(key=key, deps=[AssetKey(d.split("/")) if "/" in d else AssetKey(["marts", d]) for d in deps],
           group_name="publish", pool=WAREHOUSE_POOL,
           kinds={destination}, description=description,
           check_specs=[AssetCheckSpec(READ_BACK_CHECK, asset=key,
                                       description=f"What {title} holds after publishing equals the marts.")])
    def _publish(context: AssetExecutionContext) -> MaterializeResult:
        from finance_pipeline.platforms.registry import Platform
        from finance_pipeline.publish.destinations import enabled
        from finance_pipeline.sandbox.runtime import connection

        settings = get_settings()
        if not enabled(settings, destination):
            context.log.info(f"{title}: switched off (FINANCE_DESTINATIONS); nothing published")
            return MaterializeResult(metadata={"skipped": "destination switched off"}, check_results=[
                AssetCheckResult(check_name=READ_BACK_CHECK, passed=True,
                                 metadata={"skipped": "destination switched off"})])
        publish: Callable = Platform.load(publish_ref)
        result = publish(settings, connection(settings, destination), settings.warehouse_path,
                         dry_run=settings.publish_dry_run)
        summary = result.summary()
        context.log.info(f"{title}: {summary}")
        mismatches = result.mismatches
        if mismatches:
            context.log.error(f"{title} read-back differs from the marts in {len(mismatches)} place(s): "
                              f"{mismatches[:5]}")
        check = AssetCheckResult(
            check_name=READ_BACK_CHECK, passed=bool(result.dry_run) or not mismatches,
            severity=AssetCheckSeverity.ERROR,
            metadata={"mismatches": len(mismatches), "read_back": result.read_back,
                      "sample": MetadataValue.json([{k: str(v) for k, v in vars(m).items()} for m in mismatches[:10]]),
                      **({"dry_run": "read-back skipped: nothing was written"} if result.dry_run else {})})
        return MaterializeResult(metadata={
            **{k: v for k, v in summary.items() if isinstance(v, (int, str))},
            "mismatches": len(mismatches),
            "read_back": MetadataValue.text("clean" if not mismatches else f"{len(mismatches)} mismatches"),
            **({"dry_run": MetadataValue.json(result.dry_run)} if result.dry_run else {}),
        }, check_results=[check])

    _publish.__name__ = name
    return _publish


xero_trade_invoices = ledger_publisher_asset(
    "xero", "xero_trade_invoices", "finance_pipeline.platforms.xero.publish:publish_trade_invoices",
    deps=["fct_invoices", "fct_invoice_lines", "fct_payments", "fct_orders", "fct_payouts",
          "rpt_payout_reconciliation", "intermediate/int_balance_transactions"], title="Xero",
    description=(
        "Xero: contacts upserted; one ACCREC invoice per trade order (reference = order name, due date from "
        "the terms), updated when the order changes, voided when it is cancelled; card payments applied to "
        "those invoices into the clearing account; one summary invoice per processor payout (sales ex tax, "
        "tax, refunds, fees and trade-payment clearing on their own lines) paid from the bank, so the payout "
        "equals the deposit. Idempotent through ops.publish_ledger; read back and compared with the marts."
    ),
)


quickbooks_trade_invoices = ledger_publisher_asset(
    "quickbooks", "quickbooks_trade_invoices", "finance_pipeline.platforms.quickbooks.publish:publish_to_quickbooks",
    deps=["fct_invoices", "fct_invoice_lines", "fct_payments"], title="QuickBooks Online",
    description=(
        "Trade invoices in QuickBooks Online: customers upserted (currency from their first invoice), one "
        "Invoice per trade order (DocNumber = invoice number, VAT codes per line, the marts' tax), card "
        "payments applied to them, voids; requestid on every write, SyncToken on updates. Idempotent "
        "through ops.publish_ledger; refused records quarantined; read back and compared with the marts."
    ),
)

netsuite_trade = ledger_publisher_asset(
    "netsuite", "netsuite_trade", "finance_pipeline.platforms.netsuite.publish:publish_trade",
    deps=["fct_invoices", "fct_invoice_lines"], title="NetSuite",
    description=(
        "Trade customers, sales orders and invoices in NetSuite, upserted by externalId through the REST "
        "Record API (OAuth 2.0 client credentials; default) or SuiteTalk SOAP upsertList with TBA "
        "(NETSUITE_TRANSPORT=soap); per-record errors quarantined; within the account's concurrency limit. "
        "Idempotent through ops.publish_ledger; read back and compared with the marts."
    ),
)

# BI destinations take whole marts (finance_pipeline.publish.bi.BI_MARTS; those absent are skipped)
_BI_DEPS = ["fct_orders", "fct_order_lines", "fct_payments", "fct_refunds", "fct_payouts", "fct_invoices",
            "fct_invoice_lines", "fct_gl_entries", "rpt_payout_reconciliation", "rpt_outstanding_balances",
            "rpt_profit_and_loss", "rpt_tax_obligations", "rpt_payment_status", "rpt_sales_trends"]

powerbi_marts = ledger_publisher_asset(
    "powerbi", "powerbi_marts", "finance_pipeline.platforms.powerbi.publish:publish_marts",
    deps=_BI_DEPS, title="Power BI",
    description=(
        "The marts in a Power BI push dataset (Entra ID client credentials via MSAL): dataset found by name "
        "or created, table schemas kept in step with the marts, each changed table reloaded whole (DELETE "
        "rows, then POST in batches within the per-dataset limits); refused rows quarantined. Read back "
        "with executeQueries (row counts and money totals) and compared with the marts."
    ),
)

tableau_marts = ledger_publisher_asset(
    "tableau", "tableau_marts", "finance_pipeline.platforms.tableau.publish:publish_marts",
    deps=_BI_DEPS, title="Tableau",
    description=(
        "The marts as Tableau data sources: one .hyper extract per mart (Hyper API), published with "
        "overwrite=true (chunked upload above 64 MB) under one personal-access-token session at a time; "
        "replaced in place, never duplicated. Read back by downloading each extract and comparing row "
        "counts and money totals with the marts."
    ),
)

publish_assets = [xero_trade_invoices, quickbooks_trade_invoices, netsuite_trade, powerbi_marts, tableau_marts]
