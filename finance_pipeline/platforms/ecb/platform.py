"""How the pipeline finds the ECB's euro reference rates: a source of the day's FX rates (no
credentials, no webhooks, not a sales channel); `fct_fx_rates` and `rpt_fx_exposure` read them."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="ecb", title="ECB reference rates", role="source",
    emulator="finance_pipeline.platforms.ecb.emulator:EcbEmulator",
    live_connection="finance_pipeline.platforms.ecb.client:live_connection",
    source="finance_pipeline.platforms.ecb.source:ecb_source",
)
