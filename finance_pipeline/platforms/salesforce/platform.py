"""How the pipeline finds Salesforce (the US and hotel accounts team's CRM): a source of
Opportunities, not a sales channel (no `vars.channels` line, no Canonical oracle); they feed
`rpt_pipeline_to_cash`."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="salesforce", title="Salesforce", role="source",
    emulator="finance_pipeline.platforms.salesforce.emulator:SalesforceEmulator",
    live_connection="finance_pipeline.platforms.salesforce.client:live_connection",
    source="finance_pipeline.platforms.salesforce.source:salesforce_source",
    world="finance_pipeline.platforms.salesforce.world:generate",
)
