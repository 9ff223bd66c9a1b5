"""QuickBooks Online wire conventions shared by the emulator, the client and the publisher.

Money travels as JSON numbers (2 dp; UnitPrice may carry more); in Python it is always `Decimal`
(`loads` parses every non-integer number as Decimal, `dumps` writes Decimals as exact numbers).
Date-times carry the company's UTC offset (`2026-01-05T10:20:30+00:00`, `…+01:00` in summer);
`TxnDate` / `DueDate` are plain `YYYY-MM-DD` company-local dates.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from finance_pipeline.http.client import dumps  # noqa: F401  (re-exported: Decimal -> JSON number)

CENT = Decimal("0.01")
COMPANY_TZ = ZoneInfo("Europe/London")


def loads(raw: bytes | str) -> Any:
    return json.loads(raw, parse_float=Decimal)


def to_decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def money(value: Any) -> Decimal:
    return to_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def qbo_time(epoch_ms: int) -> str:
    """Epoch ms as QBO writes MetaData times: company-local with its offset, second precision."""
    local = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).astimezone(COMPANY_TZ)
    return local.replace(microsecond=0).isoformat()


def parse_qbo_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def fault(errors: list[dict], kind: str = "ValidationFault", now_ms: int | None = None) -> dict:
    """QBO's error envelope: {"Fault": {"Error": [{Message, Detail, code, element}], "type"}, "time"}."""
    import time as _time

    return {"Fault": {"Error": errors, "type": kind},
            "time": qbo_time(now_ms if now_ms is not None else int(_time.time() * 1000))}


def error(code: str, message: str, detail: str, element: str | None = None) -> dict:
    out = {"Message": message, "Detail": detail, "code": code}
    if element is not None:
        out["element"] = element
    return out
