"""How the pipeline finds Square (the London showroom's point of sale): its registry entry."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="square", title="Square", role="source",
    emulator="finance_pipeline.platforms.square.emulator:SquareEmulator",
    live_connection="finance_pipeline.platforms.square.client:live_connection",
    source="finance_pipeline.platforms.square.source:square_source",
    webhook_verifier="finance_pipeline.platforms.square.webhooks:verify",
    webhook_events="finance_pipeline.platforms.square.webhooks:inbox_events",
    webhook_secret="webhook_signature_key", webhook_secret_env="SQUARE_WEBHOOK_SIGNATURE_KEY",
    webhook_reject_status=403,
    webhook_sample="finance_pipeline.platforms.square.webhooks:sample_delivery",
    world="finance_pipeline.platforms.square.world:generate",
    oracle="finance_pipeline.platforms.square.oracle:expected",
)
