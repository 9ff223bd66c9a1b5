"""How the pipeline finds Tableau: its registry entry."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="tableau", title="Tableau", role="destination",
    emulator="finance_pipeline.platforms.tableau.emulator:TableauEmulator",
    live_connection="finance_pipeline.platforms.tableau.client:live_connection",
)
