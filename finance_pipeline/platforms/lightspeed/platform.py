"""How the pipeline finds Lightspeed Retail (R-Series), the Manchester showroom's POS: its registry
entry.  R-Series documents no sale webhooks, so there is no verifier: the source polls by timeStamp."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="lightspeed", title="Lightspeed Retail", role="source",
    emulator="finance_pipeline.platforms.lightspeed.emulator:LightspeedEmulator",
    live_connection="finance_pipeline.platforms.lightspeed.client:live_connection",
    source="finance_pipeline.platforms.lightspeed.source:lightspeed_source",
    world="finance_pipeline.platforms.lightspeed.world:generate",
    oracle="finance_pipeline.platforms.lightspeed.oracle:expected",
)
