"""The little OData v4 the Business Central emulator understands, and the wire helpers both sides use.

`$filter`: comparisons `field op literal` (`eq ne gt ge lt le`) joined by `and`; literals are
'quoted strings' (`''` escapes a quote), ISO dates / date-times unquoted, numbers, `true` /
`false` / `null`.  That covers what a sync and a publisher send (`lastModifiedDateTime gt
2026-11-01T00:00:00Z`, `externalDocumentNumber eq 'INV-1042'`, `number eq 'C000012'`).
"""
from __future__ import annotations

import base64
import re
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

_CLAUSE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+(eq|ne|gt|ge|lt|le)\s+(.+?)\s*$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a is not None and a > b,
    "ge": lambda a, b: a is not None and a >= b, "lt": lambda a, b: a is not None and a < b,
    "le": lambda a, b: a is not None and a <= b,
}


class FilterError(ValueError):
    pass


def quote(value: str) -> str:
    """An OData string literal."""
    return "'" + value.replace("'", "''") + "'"


def _split_and(text: str) -> list[str]:
    parts, buf, in_str, i = [], [], False, 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            in_str = not in_str
        if not in_str and text[i:i + 5].lower() == " and ":
            parts.append("".join(buf))
            buf = []
            i += 5
            continue
        buf.append(ch)
        i += 1
    parts.append("".join(buf))
    return parts


def _literal(raw: str) -> Any:
    if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
        return raw[1:-1].replace("''", "'")
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})", raw):
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(timezone.utc)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        return date.fromisoformat(raw)
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise FilterError(f"The literal '{raw}' is not valid.") from None


def parse_filter(text: str | None) -> list[tuple[str, str, Any]]:
    if not text:
        return []
    out = []
    for clause in _split_and(text):
        m = _CLAUSE.match(clause)
        if not m:
            raise FilterError(f"Could not parse the filter clause '{clause.strip()}'.")
        out.append((m.group(1), m.group(2), _literal(m.group(3).strip())))
    return out


def _comparable(value: Any, like: Any) -> Any:
    if isinstance(like, datetime) and isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(like, date) and not isinstance(like, datetime) and isinstance(value, str):
        return date.fromisoformat(value)
    if isinstance(like, Decimal) and isinstance(value, (int, float)):
        return Decimal(str(value))
    return value


def matches(row: dict, clauses: list[tuple[str, str, Any]]) -> bool:
    for name, op, literal in clauses:
        if name not in row:
            raise FilterError(f"Could not find a property named '{name}' on type "
                              "'Microsoft.NAV.entity'.")
        if not _OPS[op](_comparable(row[name], literal), literal):
            return False
    return True


def etag(version: int | str) -> str:
    """A weak ETag in BC's shape (W/"JzE…"): opaque, changes with every modification."""
    return 'W/"' + base64.b64encode(f"'{version};'".encode()).decode() + '"'


def iso(at: datetime) -> str:
    """BC's lastModifiedDateTime: UTC with milliseconds and `Z`."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"
