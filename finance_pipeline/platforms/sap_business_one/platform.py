"""How the pipeline finds SAP Business One (the wholesale warehouse desk's ledger): a sales channel
(the A/R invoices raised in it, the bank transfers recorded against them) and a publish destination
(sales orders from the other channels' trade invoices)."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="sap_business_one", title="SAP Business One", role="both",
    emulator="finance_pipeline.platforms.sap_business_one.emulator:SapBusinessOneEmulator",
    live_connection="finance_pipeline.platforms.sap_business_one.client:live_connection",
    source="finance_pipeline.platforms.sap_business_one.source:sap_business_one_source",
    webhook_verifier="finance_pipeline.platforms.sap_business_one.webhooks:verify",
    webhook_events="finance_pipeline.platforms.sap_business_one.webhooks:inbox_events",
    webhook_handshake="finance_pipeline.platforms.sap_business_one.webhooks:handshake",
    webhook_secret="webhook_key", webhook_secret_env="SAPB1_WEBHOOK_KEY",
    webhook_sample="finance_pipeline.platforms.sap_business_one.webhooks:sample_delivery",
    world="finance_pipeline.platforms.sap_business_one.world:generate",
    oracle="finance_pipeline.platforms.sap_business_one.oracle:expected",
)
