"""Zoho Books wire facts shared by the emulator, the client and the publisher.

Error bodies are `{"code": <non-zero>, "message": "..."}`; `code` 0 is success.  The numbers
below are the ones Zoho documents or developers report (docs/decisions.md, "Zoho Books": 1001,
1002, 57, 44/45 and 1000 are reported; the validation code 4 is the emulator's choice).
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

ORG_TIMEZONE = "Europe/London"
ORG_TZ = ZoneInfo(ORG_TIMEZONE)
API = "/books/v3"
MAX_PER_PAGE = 200
CENT = Decimal("0.01")
UTC = timezone.utc

# data centre -> (accounts server, API domain)
DATA_CENTRES = {
    "com": ("https://accounts.zoho.com", "https://www.zohoapis.com"),
    "eu": ("https://accounts.zoho.eu", "https://www.zohoapis.eu"),
    "in": ("https://accounts.zoho.in", "https://www.zohoapis.in"),
    "com.au": ("https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
    "jp": ("https://accounts.zoho.jp", "https://www.zohoapis.jp"),
    "ca": ("https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
    "sa": ("https://accounts.zoho.sa", "https://www.zohoapis.sa"),
    "com.cn": ("https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
}

# error codes
OK = 0
INVALID_VALUE = 4  # emulator's code for a field Zoho refuses (message names the field)
NOT_AUTHORISED = 57
RATE_LIMITED = 44  # requests per minute per organisation exceeded
CONCURRENCY_LIMITED = 45  # too many calls in flight
DUPLICATE_NUMBER = 1001
DOES_NOT_EXIST = 1002
INTERNAL = 1000
INVALID_ORGANIZATION = 6041


def money(x) -> Decimal:
    return Decimal(str(x)).quantize(CENT, rounding=ROUND_HALF_UP)


def zoho_time(at: datetime) -> str:
    """`2025-06-01T10:20:30+0100`: the organisation's time zone with its offset."""
    return at.astimezone(ORG_TZ).strftime("%Y-%m-%dT%H:%M:%S%z")


def parse_zoho_time(value: str) -> datetime:
    """Zoho's `...+0100` (or `+01:00`, or a date) -> aware UTC datetime."""
    value = value.strip().replace(" ", "+")
    if len(value) == 10:
        return datetime.fromisoformat(value).replace(tzinfo=ORG_TZ).astimezone(UTC)
    parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z") if value[-3] != ":" else datetime.fromisoformat(value)
    return parsed.astimezone(UTC)
