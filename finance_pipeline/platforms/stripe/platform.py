"""How the pipeline finds Stripe: its registry entry."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="stripe", title="Stripe", role="source",
    emulator="finance_pipeline.platforms.stripe.emulator:StripeEmulator",
    live_connection="finance_pipeline.platforms.stripe.client:live_connection",
    source="finance_pipeline.platforms.stripe.source:stripe_source",
    webhook_verifier="finance_pipeline.platforms.stripe.webhooks:verify",
    webhook_events="finance_pipeline.platforms.stripe.webhooks:inbox_events",
    webhook_secret="webhook_secret", webhook_secret_env="STRIPE_WEBHOOK_SECRET", webhook_reject_status=400,
    webhook_sample="finance_pipeline.platforms.stripe.webhooks:sample_delivery",
)
