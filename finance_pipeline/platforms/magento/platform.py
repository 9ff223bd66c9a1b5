"""How the pipeline finds Magento / Adobe Commerce (the UK web store): its registry entry.

No webhook verifier: Magento Open Source sends no webhooks, and Adobe Commerce's are synchronous
hooks or Adobe I/O Events (RSA-signed), not used here; the polling sync is the change feed."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="magento", title="Magento", role="source",
    emulator="finance_pipeline.platforms.magento.emulator:MagentoEmulator",
    live_connection="finance_pipeline.platforms.magento.client:live_connection",
    source="finance_pipeline.platforms.magento.source:magento_source",
    world="finance_pipeline.platforms.magento.world:generate",
    oracle="finance_pipeline.platforms.magento.oracle:expected",
)
