"""How the pipeline finds PayPal: its registry entry.

Webhook deliveries are verified by `webhooks.verify` (offline, PayPal's certificate scheme);
routing them through the shared receiver (`webhook_events`, `webhook_sample`) waits for the
receiver tests to re-sign deliveries per platform rather than with an HMAC (docs/decisions.md)."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="paypal", title="PayPal", role="source",
    emulator="finance_pipeline.platforms.paypal.emulator:PayPalEmulator",
    live_connection="finance_pipeline.platforms.paypal.client:live_connection",
    source="finance_pipeline.platforms.paypal.source:paypal_source",
    webhook_verifier="finance_pipeline.platforms.paypal.webhooks:verify",
    webhook_secret="webhook_id", webhook_secret_env="PAYPAL_WEBHOOK_ID",
    world="finance_pipeline.platforms.paypal.world:generate",
    oracle="finance_pipeline.platforms.paypal.oracle:expected",
)
