"""The Salesforce dlt source: Opportunities (the US and hotel accounts team's deals), merged on Id.

One resource, `opportunities`: `queryAll` (deleted rows come back with `IsDeleted = true`, kept so
staging drops them) of `SELECT <fields> FROM Opportunity WHERE SystemModstamp >= <cursor - 5 min>
ORDER BY SystemModstamp, Id`, incremental on `SystemModstamp` (it moves on every change, system
ones and deletes included; `LastModifiedDate` does not), batches of 2,000 following
`nextRecordsUrl`.  One Arrow table per batch; `Amount` kept as its exact decimal text.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.ingest.arrow import TS, parse_timestamp, rows_to_arrow
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency, check_decimal, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.salesforce import OPPORTUNITY_FIELDS
from finance_pipeline.platforms.salesforce.client import make_client, query_pages

LOOKBACK_S = 300
BATCH_SIZE = 2000
COLUMNS = {"Id": "id", "Name": "name", "Amount": "amount", "CurrencyIsoCode": "currency_iso_code",
           "StageName": "stage_name", "Probability": "probability", "CloseDate": "close_date",
           "IsClosed": "is_closed", "IsWon": "is_won", "IsDeleted": "is_deleted", "AccountId": "account_id",
           "OwnerId": "owner_id", "CreatedDate": "created_date", "LastModifiedDate": "last_modified_date",
           "SystemModstamp": "system_modstamp", "Invoice_Number__c": "invoice_number__c",
           "Trade_Customer_Id__c": "trade_customer_id__c", "Account_Name__c": "account_name__c"}
TIMES = ("CreatedDate", "LastModifiedDate", "SystemModstamp")
SCHEMA: dict[str, pa.DataType] = {
    COLUMNS[f]: (TS if f in TIMES else pa.bool_() if f.startswith("Is") else pa.string()) for f in OPPORTUNITY_FIELDS}


def _sf_time(value: Any) -> datetime | None:
    """'2026-01-15T10:22:33.000+0000' (offset without a colon) -> aware UTC."""
    if isinstance(value, str) and len(value) > 5 and value[-5] in "+-" and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]
    return parse_timestamp(value)


def validate(record: Any) -> dict:
    if not isinstance(record, dict):
        raise BadRecord("not a JSON object")
    require(record, "Id", "SystemModstamp", "StageName")
    check_decimal(record, "Amount", "Probability")
    if record.get("Amount") is not None:
        check_currency(record.get("CurrencyIsoCode"), "CurrencyIsoCode")
    row: dict[str, Any] = {}
    for f in OPPORTUNITY_FIELDS:
        value = record.get(f)
        if f in TIMES:
            try:
                value = _sf_time(value)
            except (TypeError, ValueError):
                raise BadRecord(f"{f}={value!r} is not an ISO 8601 datetime") from None
        elif f.startswith("Is"):
            value = bool(value) if value is not None else None
        elif value is not None:
            value = format(value, "f") if not isinstance(value, (str, bool)) else str(value)
        row[COLUMNS[f]] = value
    return row


def salesforce_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("salesforce")
    shared = SharedClient("salesforce", connection, make_client)

    @dlt.resource(name="opportunities", primary_key="id", write_disposition="merge")
    def opportunities(
        system_modstamp: dlt.sources.incremental[datetime] = dlt.sources.incremental("system_modstamp",
                                                                                     lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        soql = f"SELECT {', '.join(OPPORTUNITY_FIELDS)} FROM Opportunity"
        if system_modstamp.start_value is not None:
            start = parse_timestamp(system_modstamp.start_value).astimezone(timezone.utc)
            soql += f" WHERE SystemModstamp >= {start.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z"
        soql += " ORDER BY SystemModstamp, Id"
        with shared as client:
            for body in query_pages(client, soql, include_deleted=True, batch_size=BATCH_SIZE):
                rows = []
                for record in body.get("records") or []:
                    try:
                        rows.append(validate(record))
                    except BadRecord as exc:
                        quarantine.add("opportunities", record if isinstance(record, dict) else {"value": record},
                                       str(exc))
                if rows:
                    yield rows_to_arrow(rows, SCHEMA)

    @dlt.source(name="salesforce", max_table_nesting=0)
    def salesforce() -> Any:
        return (opportunities,)

    return salesforce()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"opportunities": SCHEMA}
