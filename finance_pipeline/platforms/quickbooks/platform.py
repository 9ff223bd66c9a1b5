"""How the pipeline finds QuickBooks Online: its registry entry.

A destination (the publisher) that can also be read as a source (`source.py`, query + CDC); the
source is wired for runs outside Dagster (`finance_pipeline.ingest.pipeline.run_platform`) until the
sandbox world holds the owner's own QuickBooks entries (docs/decisions.md).
"""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="quickbooks", title="QuickBooks Online", role="destination",
    emulator="finance_pipeline.platforms.quickbooks.emulator:QuickBooksEmulator",
    live_connection="finance_pipeline.platforms.quickbooks.client:live_connection",
    source="finance_pipeline.platforms.quickbooks.source:quickbooks_source",
    webhook_verifier="finance_pipeline.platforms.quickbooks.webhooks:verify",
    webhook_events="finance_pipeline.platforms.quickbooks.webhooks:inbox_events",
    webhook_secret="verifier_token", webhook_secret_env="QBO_WEBHOOK_VERIFIER_TOKEN",
    webhook_sample="finance_pipeline.platforms.quickbooks.webhooks:sample_delivery",
)
