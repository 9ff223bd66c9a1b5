"""How the pipeline finds Sage Intacct: its registry entry.

A ledger that is a sales channel (the hotel-contracts division's trade invoices, read through the
XML gateway) and a publish destination (trade invoices of the other channels written as Sales
Invoices).  No webhook verifier: Intacct has no subscription API (Platform Services triggers post
whatever their template says, unsigned); the polling sync on WHENMODIFIED is the change feed.
"""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="sage_intacct", title="Sage Intacct", role="both",
    emulator="finance_pipeline.platforms.sage_intacct.emulator:SageIntacctEmulator",
    live_connection="finance_pipeline.platforms.sage_intacct.client:live_connection",
    source="finance_pipeline.platforms.sage_intacct.source:sage_intacct_source",
    world="finance_pipeline.platforms.sage_intacct.world:generate",
    oracle="finance_pipeline.platforms.sage_intacct.oracle:expected",
)
