"""How the pipeline finds FreshBooks (the making-up and fitting service's ledger): its registry entry.

A ledger that is a sales channel (trade invoices raised in it) and a publish destination (trade
invoices of the other channels and their payments are written to it): role "both".
"""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="freshbooks", title="FreshBooks", role="both",
    emulator="finance_pipeline.platforms.freshbooks.emulator:FreshBooksEmulator",
    live_connection="finance_pipeline.platforms.freshbooks.client:live_connection",
    source="finance_pipeline.platforms.freshbooks.source:freshbooks_source",
    webhook_verifier="finance_pipeline.platforms.freshbooks.webhooks:verify",
    webhook_events="finance_pipeline.platforms.freshbooks.webhooks:inbox_events",
    webhook_handshake="finance_pipeline.platforms.freshbooks.webhooks:handshake",
    webhook_secret="webhook_verifier", webhook_secret_env="FRESHBOOKS_WEBHOOK_VERIFIER",
    webhook_sample="finance_pipeline.platforms.freshbooks.webhooks:sample_delivery",
    world="finance_pipeline.platforms.freshbooks.world:generate",
    oracle="finance_pipeline.platforms.freshbooks.oracle:expected",
)
