"""Write-back to destinations: the shared publish ledger (`ledger.py`) and mechanics (`mechanics.py`)."""
from finance_pipeline.publish.ledger import LedgerEntry, Plan, PublishLedger, content_hash
from finance_pipeline.publish.mechanics import (
    Counts, Desired, ItemError, Mismatch, Outcome, PublishResult, Rejected, Write, batched, idempotency_key,
    resolve_unknown, write_batches, write_each,
)

__all__ = [
    "LedgerEntry", "Plan", "PublishLedger", "content_hash", "Counts", "Desired", "ItemError", "Mismatch",
    "Outcome", "PublishResult", "Rejected", "Write", "batched", "idempotency_key", "resolve_unknown",
    "write_batches", "write_each",
]
