"""How the pipeline finds Looker Studio: its registry entry.  The "emulator" is the connector endpoint
itself (our own service), started by the sandbox like the emulators."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="looker_studio", title="Looker Studio", role="destination",
    emulator="finance_pipeline.platforms.looker_studio.endpoint:LookerStudioEndpoint",
    live_connection="finance_pipeline.platforms.looker_studio.client:live_connection",
)
