"""Reading one header from a webhook delivery, whatever shape the headers come in.

The receiver passes ASGI headers (a list of byte pairs); tests and samples pass a dict.  Names are
matched case-insensitively; an empty value counts as absent.
"""
from __future__ import annotations

from typing import Iterable, Mapping

Headers = Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]


def header(headers: Headers, name: str) -> str | None:
    """The value of header `name` (lower case), stripped, or None."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    for key, value in items:
        key = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        if key.lower() == name:
            value = value.decode("latin-1") if isinstance(value, bytes) else value
            return value.strip() or None
    return None
