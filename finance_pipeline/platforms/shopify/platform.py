"""How the pipeline finds Shopify: its registry entry."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="shopify", title="Shopify", role="source",
    emulator="finance_pipeline.platforms.shopify.emulator:ShopifyEmulator",
    live_connection="finance_pipeline.platforms.shopify.client:live_connection",
    source="finance_pipeline.platforms.shopify.source:shopify_source",
    webhook_verifier="finance_pipeline.platforms.shopify.webhooks:verify",
    webhook_events="finance_pipeline.platforms.shopify.webhooks:inbox_events",
    webhook_secret="webhook_secret", webhook_secret_env="SHOPIFY_WEBHOOK_SECRET",
    webhook_sample="finance_pipeline.platforms.shopify.webhooks:sample_delivery",
)
