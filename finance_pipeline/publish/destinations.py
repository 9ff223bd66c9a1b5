"""Which destinations are on, dry runs, and publish-time quarantine — the same for every publisher.

- `enabled(settings, name)`: `FINANCE_DESTINATIONS=xero,netsuite,...` (or `none`) decides; unset, the
  sandbox turns every registered destination on and live mode turns none on (a live destination
  needs credentials, so it is switched on deliberately).
- `DryRun`: a publisher in dry-run mode (`FINANCE_PUBLISH_DRY_RUN=1`, or `dry_run=True`) records what it
  would send — object type, operation, business key, request body — instead of sending it; nothing is
  written to the destination or to the ledger.  The plan is also saved as JSON under
  `<data>/publish/dry_run/<destination>.json` for a person to read.
- `quarantine_rejections(...)`: records the destination refused (its own message as the reason) go
  to `ops.quarantine` through the ingest quarantine, merged so a re-run does not double them.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from finance_pipeline.settings import Settings


def destination_names() -> list[str]:
    from finance_pipeline.platforms import registry

    return [p.name for p in registry.PLATFORMS if p.is_destination]


def enabled_destinations(settings: Settings) -> list[str]:
    known = destination_names()
    if settings.destinations is None:
        return known if settings.mode == "sandbox" else []
    unknown = [n for n in settings.destinations if n not in known]
    if unknown:
        from finance_pipeline.settings import SettingsError

        raise SettingsError(f"FINANCE_DESTINATIONS names unknown destination(s) {', '.join(unknown)}; "
                            f"known: {', '.join(known)}")
    return [n for n in known if n in settings.destinations]


def enabled(settings: Settings, name: str) -> bool:
    return name in enabled_destinations(settings)


@dataclass
class DryRun:
    """What a publisher would send, in order."""

    destination: str
    writes: list[dict[str, Any]] = field(default_factory=list)

    def add(self, object_type: str, op: str, key: str, body: Any = None, **extra: Any) -> None:
        self.writes.append({"object_type": object_type, "op": op, "key": key, "body": body, **extra})

    def counts(self) -> dict[str, int]:
        return dict(Counter(f"{w['object_type']}.{w['op']}" for w in self.writes))

    def summary(self, sample: int = 5) -> dict[str, Any]:
        """JSON-safe (Dagster metadata): money as exact decimal text, dates as ISO."""
        return json.loads(json.dumps({"dry_run": True, "would_send": self.counts(), "sample": self.writes[:sample]},
                                     default=_json_text))

    def save(self, settings: Settings) -> str:
        from finance_pipeline.sandbox.store import atomic_write

        path = settings.data_dir / "publish" / "dry_run" / f"{self.destination}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps({"destination": self.destination, "writes": self.writes},
                                      default=_json_text, indent=1).encode())
        return str(path)


def _json_text(value: Any) -> Any:
    from datetime import date
    from decimal import Decimal

    if isinstance(value, Decimal):
        return format(value, "f")  # exact digits
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def quarantine_rejections(settings: Settings, destination: str,
                          rejected: Iterable[tuple[str, str, Any, str]]) -> int:
    """(entity, key, record, destination's message) → `ops.quarantine` (platform = destination).

    Call it after the publisher has closed its own warehouse connection (one writer per file)."""
    from finance_pipeline.ingest.pipeline import save_quarantine
    from finance_pipeline.ingest.quarantine import Quarantine

    quarantine = Quarantine(destination)
    for entity, key, record, message in rejected:
        quarantine.add(entity, {"id": key, "record": record}, message)
    return save_quarantine(settings, quarantine) if quarantine.rows else 0


def run_cli(destination: str, publish: Any, argv: list[str] | None = None, description: str = "") -> int:
    """`python -m finance_pipeline.platforms.<dest>.publish --data-dir DIR [--dry-run]`: one publish run
    outside Dagster (the kill -9 tests run publishers this way); prints the summary as JSON.

    `publish(settings, connection, warehouse_path, dry_run=bool) -> PublishResult`; `warehouse_path` is
    `--warehouse`, else `Settings.warehouse_target` (the DuckDB file, or the Postgres server)."""
    import argparse
    import dataclasses
    import logging
    import sys
    from pathlib import Path

    from finance_pipeline.http.redaction import install_log_redaction
    from finance_pipeline.sandbox import runtime

    parser = argparse.ArgumentParser(prog=f"python -m finance_pipeline.platforms.{destination}.publish",
                                     description=description or f"Publish the marts to {destination}.")
    parser.add_argument("--data-dir", type=Path, help="data directory (default: FINANCE_DATA_DIR or ./data)")
    parser.add_argument("--warehouse", type=Path, help="warehouse DuckDB (default: <data dir>/warehouse.duckdb, "
                        "or the PostgreSQL server under FINANCE_WAREHOUSE=postgres)")
    parser.add_argument("--dry-run", action="store_true", help="show what would be sent; write nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    settings = Settings.from_env()
    if args.data_dir:
        settings = dataclasses.replace(settings, data_dir=args.data_dir.resolve())
    dry_run = args.dry_run or settings.publish_dry_run
    connection = runtime.connection(settings, destination)
    warehouse = args.warehouse or settings.warehouse_target
    result = publish(settings, connection, warehouse, dry_run=dry_run)
    print(json.dumps(result.summary(), default=str))
    return 0 if result.ok else 1
