"""Turn a page of API records into one `pyarrow.Table` for dlt.

dlt's dict normaliser is the bottleneck on nested orders (~10x slower than Arrow pages, see
docs/decisions.md), so every source yields one Arrow table per page: scalar fields as typed
columns, nested fields (line items, tax lines, refunds …) as JSON text that dbt unnests.
Money stays as the platform sent it (decimal strings or integer minor units); staging casts.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Mapping

import orjson
import pyarrow as pa

from finance_pipeline.http.client import json_default

JSON = pa.string()  # nested values, serialised with orjson
TS = pa.timestamp("us", tz="UTC")


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 with any offset (Shopify), 'Z' (GraphQL), or Unix seconds (Stripe) -> aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def exact_text(value: Any) -> Any:
    """A cell for a page of a JSON API that was parsed with `Decimal` numbers: money as its exact
    decimal text, nested values as JSON text (Decimals inside as exact JSON numbers), the rest as is."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, default=json_default).decode()
    return value


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value).decode()


def rows_to_arrow(rows: Iterable[Mapping[str, Any]], schema: Mapping[str, pa.DataType]) -> pa.Table:
    """Build a table with exactly the columns of `schema` (missing keys become nulls).

    Columns typed `JSON` receive the value serialised (dicts, lists); `TS` columns accept ISO
    strings or Unix seconds; every other type is passed to Arrow as is.
    """
    rows = list(rows)
    arrays = []
    for name, typ in schema.items():
        values = [r.get(name) for r in rows]
        if typ == TS:
            values = [parse_timestamp(v) for v in values]
        elif typ == JSON:
            values = [v if isinstance(v, str) or v is None else _json(v) for v in values]
        arrays.append(pa.array(values, type=typ))
    return pa.Table.from_arrays(arrays, schema=pa.schema(list(schema.items())))


def arrow_page(rows: Iterable[Mapping[str, Any]], schema: Mapping[str, pa.DataType],
               keys: Iterable[str] = ("id",)) -> pa.Table:
    """`rows_to_arrow`, with the primary-key columns marked non-nullable to match dlt's primary-key
    hint (otherwise dlt warns about the differing hint on every page)."""
    table = rows_to_arrow(rows, schema)
    for key in keys:
        index = table.schema.get_field_index(key)
        table = table.cast(table.schema.set(index, table.schema.field(index).with_nullable(False)))
    return table
