"""How the pipeline finds Xero: its registry entry."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="xero", title="Xero", role="destination",
    emulator="finance_pipeline.platforms.xero.emulator:XeroEmulator",
    live_connection="finance_pipeline.platforms.xero.client:live_connection",
    webhook_verifier="finance_pipeline.platforms.xero.webhooks:verify",
    webhook_events="finance_pipeline.platforms.xero.webhooks:inbox_events",
    webhook_secret="webhook_key", webhook_secret_env="XERO_WEBHOOK_KEY",
    webhook_sample="finance_pipeline.platforms.xero.webhooks:sample_delivery",
)
