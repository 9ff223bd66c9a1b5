"""Things every Dagster module here shares."""
from __future__ import annotations

from datetime import datetime, timezone

from finance_pipeline.settings import Settings

WAREHOUSE_POOL = "warehouse"  # every asset that writes the DuckDB warehouse runs in this pool
WAREHOUSE_TAG = "finance/warehouse"  # runs carrying it are queued one at a time (dagster.yaml)


def as_of(settings: Settings) -> datetime:
    """The data time the pipeline reports on: the sandbox clock, or now in live mode."""
    if settings.mode == "sandbox":
        from finance_pipeline.sandbox.runtime import sandbox_for

        return sandbox_for(settings).clock
    return datetime.now(timezone.utc)
