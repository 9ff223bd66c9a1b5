"""How the pipeline finds Zoho Books: a ledger that is a sales channel (the EU trade desk's own
invoices and the bank transfers recorded against them) and a publish destination (trade invoices
raised elsewhere, their customers and payments)."""
from finance_pipeline.platforms.registry import Platform

PLATFORM = Platform(
    name="zoho_books", title="Zoho Books", role="both",
    emulator="finance_pipeline.platforms.zoho_books.emulator:ZohoBooksEmulator",
    live_connection="finance_pipeline.platforms.zoho_books.client:live_connection",
    source="finance_pipeline.platforms.zoho_books.source:zoho_books_source",
    webhook_verifier="finance_pipeline.platforms.zoho_books.webhooks:verify",
    webhook_events="finance_pipeline.platforms.zoho_books.webhooks:inbox_events",
    webhook_secret="webhook_secret", webhook_secret_env="ZOHO_WEBHOOK_SECRET",
    webhook_sample="finance_pipeline.platforms.zoho_books.webhooks:sample_delivery",
    world="finance_pipeline.platforms.zoho_books.world:generate",
    oracle="finance_pipeline.platforms.zoho_books.oracle:expected",
)
