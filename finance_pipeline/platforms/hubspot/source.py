"""The HubSpot dlt source: deals (the trade reps' pipeline), merged on id.

One resource, `deals`, incremental on the deal's `updatedAt` with a 1 h lookback (HubSpot's search
index lags writes by seconds):
- first run: `GET /crm/v3/objects/deals` (every deal, no 10,000 cap);
- later runs: the search API on `hs_lastmodifieddate GTE <cursor - 1 h>`, oldest first, re-windowed
  past the 10,000-result cap (`client.search_pages`);
- every run: `GET …/deals?archived=true` (deleted deals are not searchable), kept with
  `archived = true` so staging can drop them.
One Arrow table per page; properties flattened to columns, money kept as HubSpot's decimal text.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.ingest.arrow import TS, parse_timestamp, rows_to_arrow
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, check_decimal, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.hubspot import DEAL_PROPERTIES
from finance_pipeline.platforms.hubspot.client import list_pages, make_client, search_pages

LOOKBACK_S = 3600
DEAL_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "created_at": TS, "updated_at": TS, "archived": pa.bool_(), "archived_at": TS,
    "modified_at": TS, **{name: pa.string() for name in (
        "dealname", "amount", "deal_currency_code", "dealstage", "pipeline", "closedate", "hubspot_owner_id",
        "hs_is_closed", "hs_is_closed_won", "hs_deal_stage_probability", "invoice_number", "trade_customer_id",
        "trade_company")},
}


def validate_deal(deal: Any) -> dict:
    if not isinstance(deal, dict):
        raise BadRecord("not a JSON object")
    require(deal, "id", "updatedAt", "createdAt")
    props = deal.get("properties") or {}
    require(props, "dealstage", "hs_lastmodifieddate")
    check_decimal(props, "amount", "hs_deal_stage_probability")
    if props.get("amount") not in (None, ""):
        check_currency(props.get("deal_currency_code"), "deal_currency_code")
    times = {}
    for name, value in (("created_at", deal.get("createdAt")), ("updated_at", deal.get("updatedAt")),
                        ("archived_at", deal.get("archivedAt")), ("modified_at", props.get("hs_lastmodifieddate")),
                        ("closedate", props.get("closedate"))):
        try:
            times[name] = parse_timestamp(value)
        except (TypeError, ValueError):
            raise BadRecord(f"{name}={value!r} is not an ISO 8601 timestamp") from None
    row = {k: props.get(k) for k in DEAL_SCHEMA if k in props}
    row.update(id=str(deal["id"]), archived=bool(deal.get("archived")), created_at=times["created_at"],
               updated_at=times["updated_at"], archived_at=times["archived_at"], modified_at=times["modified_at"])
    return row


def hubspot_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("hubspot")
    shared = SharedClient("hubspot", connection, make_client)

    def table(page: list) -> pa.Table | None:
        rows = []
        for deal in page:
            try:
                rows.append(validate_deal(deal))
            except BadRecord as exc:
                quarantine.add("deals", deal if isinstance(deal, dict) else {"value": deal}, str(exc))
        return rows_to_arrow(rows, DEAL_SCHEMA) if rows else None

    @dlt.resource(name="deals", primary_key="id", write_disposition="merge")
    def deals(
        updated_at: dlt.sources.incremental[datetime] = dlt.sources.incremental("updated_at", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        with shared as client:
            since = parse_timestamp(updated_at.start_value) if updated_at.start_value is not None else None
            pages = (list_pages(client, DEAL_PROPERTIES) if since is None
                     else search_pages(client, DEAL_PROPERTIES, since))
            for page in pages:
                if (t := table(page)) is not None:
                    yield t
            for page in list_pages(client, DEAL_PROPERTIES, archived=True):
                if (t := table(page)) is not None:
                    yield t

    @dlt.source(name="hubspot", max_table_nesting=0)
    def hubspot() -> Any:
        return (deals,)

    return hubspot()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"deals": DEAL_SCHEMA}
