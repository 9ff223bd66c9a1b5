"""How the pipeline finds monday.com: its registry entry."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="monday", title="monday.com", role="destination",
    emulator="finance_pipeline.platforms.monday.emulator:MondayEmulator",
    live_connection="finance_pipeline.platforms.monday.client:live_connection",
)
