"""Write-back assets: ledgers and BI tools, downstream of the marts."""

from typing import Callable, Sequence

from dagster import (
    AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetKey, AssetsDefinition,
    MaterializeResult, MetadataValue, asset,
)

from finance_pipeline.defs.common import WAREHOUSE_POOL
from finance_pipeline.publish.bi import BI_MARTS, OPTIONAL_MARTS
from finance_pipeline.settings import get_settings

READ_BACK_CHECK = "read_back_matches_marts"


def ledger_publisher_asset(destination: str, name: str, publish_ref: str, *, deps: Sequence[str],
                           description: str, title: str) -> AssetsDefinition:
    """A publish asset for one destination, the same for every ledger publisher:

    - off unless `FINANCE_DESTINATIONS` (or the sandbox default) switches the destination on;
    - `FINANCE_PUBLISH_DRY_RUN=1` runs it in dry-run mode (nothing written; the plan in the metadata);
    - the publisher's read-back comparison becomes the asset check `read_back_matches_marts`.

    `publish_ref` is "module:function" with `function(settings, connection, warehouse_path, *,
    dry_run: bool) -> PublishResult` (imported at run time, so definitions stay cheap); `warehouse_path` is
    `Settings.warehouse_target`: the DuckDB file, or the PostgreSQL server under FINANCE_WAREHOUSE=postgres.
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
        result = publish(settings, connection(settings, destination), settings.warehouse_target,
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
        "Trade invoices of the other channels in QuickBooks Online (never the trade counter's own): customers "
        "upserted (currency from their first invoice), one Invoice per trade order (DocNumber = invoice number, "
        "VAT codes per line, the marts' tax), card payments applied to them, voids; written 30 at a time through "
        "/batch, requestid on every request, SyncToken on updates. Idempotent "
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

sage_intacct_trade = ledger_publisher_asset(
    "sage_intacct", "sage_intacct_trade", "finance_pipeline.platforms.sage_intacct.publish:publish_trade_invoices",
    deps=["fct_invoices", "fct_invoice_lines"], title="Sage Intacct",
    description=(
        "Trade invoices of the other channels as Order Entry Sales Invoices in Sage Intacct (XML gateway): "
        "customers created when missing, create_sotransaction (documentno = invoice number), "
        "update_sotransaction when the marts change, delete_sotransaction when voided; uniqueid + controlid per "
        "request, look-up by document number after a crash. Idempotent through ops.publish_ledger; refused "
        "records quarantined; read back and compared with the marts."
    ),
)

# BI destinations take whole marts (those absent, e.g. the CRM marts without a CRM, are skipped)
_BI_DEPS = [m for m in BI_MARTS if m not in OPTIONAL_MARTS]

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
        "counts and money totals with the marts. With FINANCE_WAREHOUSE=postgres: one .tds per mart "
        "connected live to the warehouse (password embedded through the publish request only), its extract "
        "created/refreshed by Tableau (job polled) and a daily extract refresh task; the refreshed extract is "
        "read back and compared with the marts on Postgres."
    ),
)

monday_trade_invoices = ledger_publisher_asset(
    "monday", "monday_trade_invoices", "finance_pipeline.platforms.monday.publish:publish_to_monday",
    deps=["fct_invoices", "rpt_payment_status"], title="monday.com",
    description=(
        "The monday.com board \"Trade invoices\": one item per trade invoice (name = invoice number; customer, "
        "currency, total, open amount, due date, payment status label), created or updated with batched "
        "aliased GraphQL mutations within the complexity budget; looked up by name before creating. "
        "Idempotent through ops.publish_ledger; refused values quarantined; board read back and compared."
    ),
)

looker_studio_marts = ledger_publisher_asset(
    "looker_studio", "looker_studio_marts", "finance_pipeline.platforms.looker_studio.publish:publish_marts",
    deps=_BI_DEPS, title="Looker Studio",
    description=(
        "The marts as the Looker Studio connector snapshot (<data dir>/looker_studio/: a parquet file per mart "
        "and an atomically switched manifest; unchanged marts not rewritten), served by the connector endpoint "
        "(finance-pipeline looker-endpoint). Read back with getSchema/getData and compared with the marts."
    ),
)

zoho_books_trade = ledger_publisher_asset(
    "zoho_books", "zoho_books_trade", "finance_pipeline.platforms.zoho_books.publish:publish_to_zoho_books",
    deps=["fct_invoices", "fct_invoice_lines", "fct_payments"], title="Zoho Books",
    description=(
        "Trade invoices of the other channels in Zoho Books (never the EU desk's own): contacts created when "
        "missing (contact_number = customer id), invoices with our number (ignore_auto_number_generation), VAT "
        "or exemption per line, payments applied to them, updates by PUT, voids. Idempotent through "
        "ops.publish_ledger with look-ups by number / reference; refused records quarantined; read back."
    ),
)

dynamics365_sales_orders = ledger_publisher_asset(
    "dynamics365", "dynamics365_sales_orders", "finance_pipeline.platforms.dynamics365.publish:publish_sales_orders",
    deps=["fct_invoices", "fct_invoice_lines"], title="Business Central",
    description=(
        "Trade invoices of the other channels as sales orders in Dynamics 365 Business Central (never the US "
        "desk's own): customers created by number when missing, orders with their lines as a deep insert "
        "(externalDocumentNumber = invoice number, looked up before posting), updates by PATCH with If-Match and "
        "lines replaced, voided ones deleted. Idempotent through ops.publish_ledger; refused records "
        "quarantined with BC's message; read back and compared with the marts."
    ),
)

sap_business_one_sales_orders = ledger_publisher_asset(
    "sap_business_one", "sap_business_one_sales_orders",
    "finance_pipeline.platforms.sap_business_one.publish:publish_orders",
    deps=["fct_invoices", "fct_invoice_lines"], title="SAP Business One",
    description=(
        "Trade invoices of the other channels as sales orders in SAP Business One (Service Layer, cookie "
        "session): business partners created when missing, NumAtCard = invoice number (the look-up after a "
        "crash), edits patched with the lines replaced, voids cancelled. Idempotent through "
        "ops.publish_ledger; refused records quarantined with B1's message; read back and compared."
    ),
)

freshbooks_trade_invoices = ledger_publisher_asset(
    "freshbooks", "freshbooks_trade_invoices", "finance_pipeline.platforms.freshbooks.publish:publish_to_freshbooks",
    deps=["fct_invoices", "fct_invoice_lines", "fct_payments"], title="FreshBooks",
    description=(
        "Trade invoices of the other channels in FreshBooks (never the fitting service's own): clients created "
        "when missing (customer id in the note), invoices with our number, tax by name and percent per line, "
        "payments against them when a channel payment settles them; updates by PUT, voids and dropped payments "
        "as vis_state 1. Idempotent through ops.publish_ledger with look-ups by invoice number / payment note; "
        "refused records quarantined; read back and compared with the marts."
    ),
)

publish_assets = [xero_trade_invoices, quickbooks_trade_invoices, netsuite_trade, powerbi_marts, tableau_marts,
                  monday_trade_invoices, looker_studio_marts, zoho_books_trade, dynamics365_sales_orders,
                  sage_intacct_trade, sap_business_one_sales_orders, freshbooks_trade_invoices]
