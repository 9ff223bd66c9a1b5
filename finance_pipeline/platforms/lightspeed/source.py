"""The Lightspeed Retail (R-Series) dlt source: sales with their lines and payments.

One resource, `sales`: `GET /API/V3/Account/{id}/Sale.json` with
`load_relations=["SaleLines","SaleLines.Item","SalePayments","SalePayments.PaymentType","Customer"]`,
`timeStamp=>=,<last timeStamp - 2 h>`, `sort=timeStamp`, `limit=100`, following the body's
`@attributes.next` URL verbatim until it is empty.  `timeStamp` is the sale's last-modified time
(completion, voiding, a customer attached later), so edits to old sales arrive; returns are
sales of their own.  One Arrow table per page, columns renamed to snake_case; scalars typed
(booleans from "true"/"false"), money kept as the decimal strings Lightspeed sends, lines and
payments as JSON lists (the single-object quirk of XML-born JSON normalised to lists).
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.http.pagination import next_url_pages
from finance_pipeline.ingest.arrow import JSON, TS, parse_timestamp, rows_to_arrow
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_decimal, require
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.lightspeed import MAX_LIMIT, SALE_RELATIONS
from finance_pipeline.platforms.lightspeed.client import make_client

log = logging.getLogger("finance_pipeline.lightspeed")
LOOKBACK_S = 2 * 3600
SALE_MONEY = ("calcDiscount", "calcSubtotal", "calcTax1", "calcTax2", "calcTotal", "calcPayments", "total", "balance")
LINE_MONEY = ("unitPrice", "calcLineDiscount", "calcSubtotal", "calcTotal", "calcTax1", "calcTax2")

SALE_SCHEMA: dict[str, pa.DataType] = {
    "id": pa.string(), "time_stamp": TS, "create_time": TS, "update_time": TS, "complete_time": TS,
    "completed": pa.bool_(), "voided": pa.bool_(), "archived": pa.bool_(), "ticket_number": pa.string(),
    "shop_id": pa.string(), "register_id": pa.string(), "employee_id": pa.string(), "customer_id": pa.string(),
    "is_tax_inclusive": pa.bool_(), "tax1_rate": pa.string(), "tax2_rate": pa.string(),
    **{name: pa.string() for name in ("calc_discount", "calc_subtotal", "calc_tax1", "calc_tax2", "calc_total",
                                      "calc_payments", "total", "balance")},
    "sale_lines": JSON, "sale_payments": JSON,
}


def as_list(value: Any) -> list:
    """XML-born JSON: one child is an object, several an array, none absent."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i and (not name[i - 1].isupper()):
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _bool(value: Any) -> bool | None:
    if value in (None, ""):
        return None
    return str(value).lower() == "true"


def validate_sale(sale: dict) -> dict:
    require(sale, "saleID", "timeStamp", "createTime")
    if not str(sale["saleID"]).isdigit():
        raise BadRecord(f"saleID={sale['saleID']!r} is not a numeric id")
    for name in ("timeStamp", "createTime", "updateTime", "completeTime"):
        try:
            parse_timestamp(sale.get(name))
        except (TypeError, ValueError):
            raise BadRecord(f"{name}={sale.get(name)!r} is not an ISO 8601 timestamp") from None
    check_decimal(sale, *SALE_MONEY, "tax1Rate", "tax2Rate")
    lines = as_list((sale.get("SaleLines") or {}).get("SaleLine"))
    for line in lines:
        require(line, "saleLineID", "unitQuantity")
        check_decimal(line, *LINE_MONEY, "unitQuantity")
    payments = as_list((sale.get("SalePayments") or {}).get("SalePayment"))
    for payment in payments:
        require(payment, "salePaymentID", "amount", "paymentTypeID")
        check_decimal(payment, "amount")
    row: dict[str, Any] = {"id": str(sale["saleID"]), "sale_lines": lines, "sale_payments": payments}
    for key, value in sale.items():
        if isinstance(value, (dict, list)) or key == "saleID":
            continue
        name = _snake(key)
        if name in ("time_stamp", "create_time", "update_time", "complete_time"):
            row[name] = value or None
        elif name in ("completed", "voided", "archived", "is_tax_inclusive"):
            row[name] = _bool(value)
        else:
            row[name] = value
    return row


def lightspeed_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("lightspeed")
    shared = SharedClient("lightspeed", connection, make_client)

    @dlt.resource(name="sales", primary_key="id", write_disposition="merge")
    def sales(
        time_stamp: dlt.sources.incremental[datetime] = dlt.sources.incremental("time_stamp", lag=LOOKBACK_S),
    ) -> Iterator[pa.Table]:
        params: dict[str, Any] = {"load_relations": json.dumps(SALE_RELATIONS, separators=(",", ":")),
                                  "sort": "timeStamp", "limit": MAX_LIMIT}
        if time_stamp.start_value is not None:
            start = parse_timestamp(time_stamp.start_value).astimezone(timezone.utc)
            params["timeStamp"] = f">=,{start.strftime('%Y-%m-%dT%H:%M:%S+00:00')}"
        with shared as client:
            for body in next_url_pages(client, "Sale.json", params,
                                       next_of=lambda b: (b.get("@attributes") or {}).get("next")):
                rows = []
                for sale in as_list(body.get("Sale")):
                    try:
                        if not isinstance(sale, dict):
                            raise BadRecord("not a JSON object")
                        rows.append(validate_sale(sale))
                    except BadRecord as exc:
                        quarantine.add("sales", {"id": (sale or {}).get("saleID") if isinstance(sale, dict) else None,
                                                 **(sale if isinstance(sale, dict) else {"value": sale})}, str(exc))
                if rows:
                    table = rows_to_arrow(rows, SALE_SCHEMA)
                    i = table.schema.get_field_index("id")
                    yield table.cast(table.schema.set(i, table.schema.field(i).with_nullable(False)))

    @dlt.source(name="lightspeed", max_table_nesting=0)
    def lightspeed() -> Any:
        return (sales,)

    return lightspeed()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"sales": SALE_SCHEMA}
