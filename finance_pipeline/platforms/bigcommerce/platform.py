"""How the pipeline finds BigCommerce (the US web store): its registry entry."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="bigcommerce", title="BigCommerce", role="source",
    emulator="finance_pipeline.platforms.bigcommerce.emulator:BigCommerceEmulator",
    live_connection="finance_pipeline.platforms.bigcommerce.client:live_connection",
    source="finance_pipeline.platforms.bigcommerce.source:bigcommerce_source",
    webhook_verifier="finance_pipeline.platforms.bigcommerce.webhooks:verify",
    webhook_events="finance_pipeline.platforms.bigcommerce.webhooks:inbox_events",
    webhook_secret="client_secret", webhook_secret_env="BIGCOMMERCE_CLIENT_SECRET",
    webhook_sample="finance_pipeline.platforms.bigcommerce.webhooks:sample_delivery",
    world="finance_pipeline.platforms.bigcommerce.world:generate",
    oracle="finance_pipeline.platforms.bigcommerce.oracle:expected",
)
