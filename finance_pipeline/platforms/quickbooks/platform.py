"""How the pipeline finds QuickBooks Online: a ledger that is a sales channel (the UK trade counter's
own invoices, sales receipts and the bank transfers recorded against them, read with the query
language and CDC) and a publish destination (trade invoices raised elsewhere, their customers and
payments)."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="quickbooks", title="QuickBooks Online", role="both",
    emulator="finance_pipeline.platforms.quickbooks.emulator:QuickBooksEmulator",
    live_connection="finance_pipeline.platforms.quickbooks.client:live_connection",
    source="finance_pipeline.platforms.quickbooks.source:quickbooks_source",
    webhook_verifier="finance_pipeline.platforms.quickbooks.webhooks:verify",
    webhook_events="finance_pipeline.platforms.quickbooks.webhooks:inbox_events",
    webhook_secret="verifier_token", webhook_secret_env="QBO_WEBHOOK_VERIFIER_TOKEN",
    webhook_sample="finance_pipeline.platforms.quickbooks.webhooks:sample_delivery",
    world="finance_pipeline.platforms.quickbooks.world:generate",
    oracle="finance_pipeline.platforms.quickbooks.oracle:expected",
)
