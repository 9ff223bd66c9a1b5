"""How the pipeline finds Amazon (Selling Partner API): its registry entry.

Amazon has no HTTP webhooks (its Notifications API delivers to Amazon SQS or EventBridge), so no
webhook fields are set."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="amazon", title="Amazon", role="source",
    emulator="finance_pipeline.platforms.amazon.emulator:AmazonEmulator",
    live_connection="finance_pipeline.platforms.amazon.client:live_connection",
    source="finance_pipeline.platforms.amazon.source:amazon_source",
    world="finance_pipeline.platforms.amazon.world:generate",
    oracle="finance_pipeline.platforms.amazon.oracle:expected",
)
