"""The ECB dlt source: euro reference rates, one row per (currency, observation date), merged.

One resource, `rates`, incremental on the observation date: the first run reads from
`FIRST_DATE` (the world's and the ledgers' first year), later runs from the last date loaded minus
`LOOKBACK_DAYS` (dlt's `lag` on a date cursor is in days), so a rate the ECB corrects within a few
days of publishing is read again and replaces the stored one.  Values are kept as the ECB's exact
decimal text (`obs_value`), never a float; staging casts them to DECIMAL.  A row that does not read
as a rate (no date, a value that is not a positive decimal, an unknown currency) is quarantined.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.ingest.arrow import arrow_page
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.ecb.client import currencies, fetch_rates, make_client

FIRST_DATE = date(2025, 1, 1)
LOOKBACK_DAYS = 5
KEYS = ("currency", "rate_date")
SCHEMA: dict[str, pa.DataType] = {
    "currency": pa.string(), "rate_date": pa.date32(), "currency_denom": pa.string(), "series_key": pa.string(),
    "obs_value": pa.string(), "obs_status": pa.string(), "decimals": pa.int32(), "title": pa.string(),
}


def validate(row: dict) -> dict:
    require(row, "KEY", "CURRENCY", "CURRENCY_DENOM", "TIME_PERIOD", "OBS_VALUE")
    check_currency(row["CURRENCY"], "CURRENCY")
    check_currency(row["CURRENCY_DENOM"], "CURRENCY_DENOM")
    try:
        day = date.fromisoformat(row["TIME_PERIOD"])
    except ValueError:
        raise BadRecord(f"TIME_PERIOD={row['TIME_PERIOD']!r} is not a date") from None
    try:
        value = Decimal(row["OBS_VALUE"])
    except InvalidOperation:
        raise BadRecord(f"OBS_VALUE={row['OBS_VALUE']!r} is not a decimal rate") from None
    if not value.is_finite() or value <= 0:
        raise BadRecord(f"OBS_VALUE={row['OBS_VALUE']!r} is not a positive rate")
    decimals = row.get("DECIMALS") or None
    if decimals is not None and not decimals.isdigit():
        raise BadRecord(f"DECIMALS={decimals!r} is not a number of decimals")
    return {"currency": row["CURRENCY"].upper(), "rate_date": day, "currency_denom": row["CURRENCY_DENOM"].upper(),
            "series_key": row["KEY"], "obs_value": row["OBS_VALUE"], "obs_status": row.get("OBS_STATUS") or None,
            "decimals": int(decimals) if decimals is not None else None, "title": row.get("TITLE") or None}


def ecb_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("ecb")
    shared = SharedClient("ecb", connection, make_client)

    @dlt.resource(name="rates", primary_key=KEYS, write_disposition="merge")
    def rates(
        rate_date: dlt.sources.incremental[date] = dlt.sources.incremental("rate_date", initial_value=FIRST_DATE,
                                                                           lag=LOOKBACK_DAYS),
    ) -> Iterator[pa.Table]:
        with shared as client:
            assert connection is not None
            rows = []
            for raw in fetch_rates(client, currencies(connection), start=rate_date.start_value):
                try:
                    rows.append(validate(raw))
                except BadRecord as exc:
                    quarantine.add("rates", raw, str(exc),
                                   record_id=f"{raw.get('CURRENCY')}:{raw.get('TIME_PERIOD')}")
            if rows:
                yield arrow_page(rows, SCHEMA, KEYS)

    @dlt.source(name="ecb", max_table_nesting=0)
    def ecb() -> Any:
        return (rates,)

    return ecb()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"rates": SCHEMA}
