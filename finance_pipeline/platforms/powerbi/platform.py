"""How the pipeline finds Power BI: its registry entry."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="powerbi", title="Power BI", role="destination",
    emulator="finance_pipeline.platforms.powerbi.emulator:PowerBIEmulator",
    live_connection="finance_pipeline.platforms.powerbi.client:live_connection",
)
