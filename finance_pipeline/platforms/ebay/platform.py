"""How the pipeline finds eBay: its registry entry."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="ebay", title="eBay", role="source",
    emulator="finance_pipeline.platforms.ebay.emulator:EbayEmulator",
    live_connection="finance_pipeline.platforms.ebay.client:live_connection",
    source="finance_pipeline.platforms.ebay.source:ebay_source",
    world="finance_pipeline.platforms.ebay.world:generate",
    oracle="finance_pipeline.platforms.ebay.oracle:expected",
)
