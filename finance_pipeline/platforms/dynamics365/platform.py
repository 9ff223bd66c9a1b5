"""How the pipeline finds Dynamics 365 Business Central: its registry entry.

A ledger that is both a sales channel (the US trade desk's invoices and the bank transfers
recorded against them) and a publish destination (the other channels' trade invoices as sales
orders).  No webhook verifier: BC's webhooks carry no signature (authenticity is the
`clientState` echoed back, after a validation handshake) and the hourly sync is the change feed;
see docs/decisions.md.
"""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="dynamics365", title="Dynamics 365 Business Central", role="both",
    emulator="finance_pipeline.platforms.dynamics365.emulator:DynamicsEmulator",
    live_connection="finance_pipeline.platforms.dynamics365.client:live_connection",
    source="finance_pipeline.platforms.dynamics365.source:dynamics365_source",
    world="finance_pipeline.platforms.dynamics365.world:generate",
    oracle="finance_pipeline.platforms.dynamics365.oracle:expected",
)
