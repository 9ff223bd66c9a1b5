"""Xero's wire conventions, shared by the emulator, the client and the publisher.

- Money travels as JSON numbers with 2 dp (UnitAmount/Quantity up to 4 dp with `unitdp=4`); in Python
  it is always `Decimal`: bodies are written with `dumps` (Decimal -> exact JSON number) and read
  with `loads` (JSON number -> Decimal, never float).
- Dates come back in MS-JSON (`/Date(1748736000000+0000)/`) next to an ISO `DateString`; requests
  send `YYYY-MM-DD`.
"""
from __future__ import annotations

import json
import re
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from finance_pipeline.http.client import dumps  # noqa: F401  (re-exported: Decimal -> JSON number)

CENT = Decimal("0.01")
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def loads(raw: bytes | str) -> Any:
    """JSON with every non-integer number as an exact `Decimal`."""
    return json.loads(raw, parse_float=Decimal)


def money(value: Any) -> Decimal:
    """A 2-dp Decimal (half away from zero, as accounting systems round)."""
    return to_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):  # only ever from a foreign parser: go through its shortest repr
        return Decimal(repr(value))
    return Decimal(str(value))


def ms_json(value: date | datetime | int) -> str:
    """`/Date(<ms since epoch>+0000)/` for a date (midnight UTC), an aware datetime or epoch ms."""
    if isinstance(value, int):
        ms = value
    elif isinstance(value, datetime):
        ms = int(value.astimezone(timezone.utc).timestamp() * 1000)
    else:
        ms = int(datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp() * 1000)
    return f"/Date({ms}+0000)/"


def parse_ms_json(value: str) -> datetime:
    """MS-JSON date -> aware UTC datetime (the offset, when present, says how the date was shown)."""
    match = _MS_DATE.match(value.strip())
    if not match:
        raise ValueError(f"not an MS-JSON date: {value!r}")
    return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=timezone.utc)


def parse_date(value: Any) -> date:
    """A date as Xero accepts it in requests (`YYYY-MM-DD`, `YYYY-MM-DDT00:00:00`, MS-JSON)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if text.startswith("/Date("):
        return parse_ms_json(text).date()
    return date.fromisoformat(text[:10])


def date_string(value: date) -> str:
    return f"{value.isoformat()}T00:00:00"
