"""Bad records are set aside with their reason; the run goes on and says how many.

Sources call `quarantine.add(...)` instead of yielding a record they cannot trust (missing id,
unparseable money, unknown currency …).  After the load, the ingest asset writes the collected
rows to `ops.quarantine` (merge on platform/entity/record/reason, so a re-run does not double
them) and reports the count in the asset's metadata and log.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

import orjson

from finance_pipeline.http.redaction import redact
from finance_pipeline.ingest.arrow import parse_timestamp

KNOWN_CURRENCIES = frozenset({"GBP", "EUR", "USD", "AUD", "CAD", "NZD", "JPY", "CHF", "SEK", "DKK", "NOK", "PLN"})


class BadRecord(ValueError):
    """Raised by a record validator; the message is the quarantine reason."""


@dataclass
class Quarantine:
    platform: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, entity: str, record: Any, reason: str, record_id: Any = None) -> None:
        """`record_id`: the record's key when it is not called id / Id / InvoiceID (eBay's orderId,
        PayPal's transaction_id …).  A record without any key is named by a hash of its content,
        so the quarantine's primary key is never null and a re-run merges onto the same row."""
        if record_id is None and isinstance(record, dict):
            record_id = record.get("id") or record.get("Id") or record.get("InvoiceID")
        payload = redact(orjson.dumps(record, default=str).decode())
        if record_id is None:
            record_id = "sha:" + hashlib.blake2b(payload.encode(), digest_size=10).hexdigest()
        with self._lock:
            self.rows.append({
                "platform": self.platform, "entity": entity,
                "record_id": str(record_id) if record_id is not None else None,
                "reason": reason, "payload": payload,
                "quarantined_at": datetime.now(timezone.utc),
            })

    def __len__(self) -> int:
        return len(self.rows)

    def keep(self, entity: str, records: Any, check: Callable[[dict], None], key: str | None = None) -> list[dict]:
        """The records `check` accepts; the others (and non-objects) set aside with its reason, named
        by their `key` field when the platform's id is not called id (see `add`)."""
        good = []
        for record in records:
            try:
                if not isinstance(record, dict):
                    raise BadRecord("not a JSON object")
                check(record)
            except BadRecord as exc:
                record_id = record.get(key) if key is not None and isinstance(record, dict) else None
                self.add(entity, record, str(exc), record_id=record_id)
                continue
            good.append(record)
        return good


def check_decimal(record: dict, *fields: str) -> None:
    """Money as decimal strings must parse (never as float)."""
    for name in fields:
        value = record.get(name)
        if value is None:
            continue
        try:
            Decimal(str(value))
        except (InvalidOperation, ValueError):
            raise BadRecord(f"{name}={value!r} is not a decimal amount") from None


def check_currency(value: Any, field_name: str = "currency") -> None:
    if not isinstance(value, str) or value.upper() not in KNOWN_CURRENCIES:
        raise BadRecord(f"{field_name}={value!r} is not a known ISO 4217 currency")


def require(record: dict, *fields: str) -> None:
    missing = [f for f in fields if record.get(f) in (None, "")]
    if missing:
        raise BadRecord(f"missing {', '.join(missing)}")


def check_int_id(record: dict, *names: str) -> None:
    """Ids that must be JSON integers (not text, not booleans)."""
    for name in names:
        value = record.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadRecord(f"{name}={value!r} is not an integer id")


def check_timestamps(record: dict, *names: str, kind: str = "an ISO 8601 date") -> None:
    """Fields that must read as a moment (`parse_timestamp`; an absent one passes: `require` is for
    that). `kind` names the expected form in the reason, as the platform's documentation calls it."""
    for name in names:
        try:
            parse_timestamp(record.get(name))
        except (TypeError, ValueError):
            raise BadRecord(f"{name}={record.get(name)!r} is not {kind}") from None
