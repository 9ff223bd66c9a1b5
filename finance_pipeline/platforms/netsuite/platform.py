"""How the pipeline finds NetSuite: its registry entry."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="netsuite", title="NetSuite", role="destination",
    emulator="finance_pipeline.platforms.netsuite.emulator:NetSuiteEmulator",
    live_connection="finance_pipeline.platforms.netsuite.client:live_connection",
)
