"""How the pipeline finds WooCommerce (the EU web store): its registry entry."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="woocommerce", title="WooCommerce", role="source",
    emulator="finance_pipeline.platforms.woocommerce.emulator:WooCommerceEmulator",
    live_connection="finance_pipeline.platforms.woocommerce.client:live_connection",
    source="finance_pipeline.platforms.woocommerce.source:woocommerce_source",
    webhook_verifier="finance_pipeline.platforms.woocommerce.webhooks:verify",
    webhook_events="finance_pipeline.platforms.woocommerce.webhooks:inbox_events",
    webhook_secret="webhook_secret", webhook_secret_env="WOOCOMMERCE_WEBHOOK_SECRET",
    webhook_sample="finance_pipeline.platforms.woocommerce.webhooks:sample_delivery",
    world="finance_pipeline.platforms.woocommerce.world:generate",
    oracle="finance_pipeline.platforms.woocommerce.oracle:expected",
)
