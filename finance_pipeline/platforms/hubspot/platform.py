"""How the pipeline finds HubSpot (the UK/EU trade reps' CRM): a source of deals, not a sales
channel (no `vars.channels` line, no Canonical oracle); the deals feed `rpt_pipeline_to_cash`."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="hubspot", title="HubSpot CRM", role="source",
    emulator="finance_pipeline.platforms.hubspot.emulator:HubSpotEmulator",
    live_connection="finance_pipeline.platforms.hubspot.client:live_connection",
    source="finance_pipeline.platforms.hubspot.source:hubspot_source",
    webhook_verifier="finance_pipeline.platforms.hubspot.webhooks:verify",
    webhook_events="finance_pipeline.platforms.hubspot.webhooks:inbox_events",
    webhook_secret="client_secret", webhook_secret_env="HUBSPOT_CLIENT_SECRET",
    webhook_sample="finance_pipeline.platforms.hubspot.webhooks:sample_delivery",
    world="finance_pipeline.platforms.hubspot.world:generate",
)
