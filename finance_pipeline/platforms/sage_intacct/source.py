"""The Sage Intacct dlt source: the division's Sales Invoices, their lines, and customer payments.

Four resources, each `readByQuery` + `readMore` (1000 rows a page) filtered on `WHENMODIFIED >=` the
last run's largest value less a 2 h lookback (dlt's `lag`) (Intacct's `MM/DD/YYYY HH:MM:SS`; the zone of
WHENMODIFIED is the server's, so the window overlaps), merged on `RECORDNO`:
- `sodocuments`        SODOCUMENT, `DOCPARID = 'Sales Invoice' AND DOCNO LIKE 'SI-%'` (the division's
                       own numbering: invoices published here from other channels are not read back
                       as sales of this channel);
- `sodocument_entries` SODOCUMENTENTRY of those documents (`DOCHDRID LIKE 'Sales Invoice-SI-%'`);
- `arpayments`         ARPYMT (customer payments: bank transfers recorded in Accounts Receivable);
- `arpayment_details`  ARPYMTDETAIL (which AR invoice each payment paid: `RECORDKEY` = the
                       document's `PRRECORDKEY`).
Every field arrives as text; rows are typed here (money kept as exact decimal text, dates parsed);
a row that fails its checks is quarantined and the rest loaded.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.ingest.arrow import TS, rows_to_arrow
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency
from finance_pipeline.ingest.shared_client import SharedClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.sage_intacct import wire
from finance_pipeline.platforms.sage_intacct.client import make_client

PAGE_SIZE = 1000
LOOKBACK_S = 2 * 3600
DOC_QUERY = "DOCPARID = 'Sales Invoice' AND DOCNO LIKE 'SI-%'"
LINE_QUERY = "DOCHDRID LIKE 'Sales Invoice-SI-%'"

_S, _I, _D = pa.string(), pa.int64(), pa.date32()
RESOURCES: dict[str, tuple[str, str | None, dict[str, Any], tuple[str, ...], tuple[str, ...]]] = {
    # resource: (object, base query, {column: type}, money columns, required)
    "sodocuments": ("SODOCUMENT", DOC_QUERY, {
        "RECORDNO": _I, "DOCNO": _S, "DOCID": _S, "DOCPARID": _S, "STATE": _S, "WHENCREATED": _D, "WHENDUE": _D,
        "AUWHENCREATED": TS, "WHENMODIFIED": TS, "CUSTVENDID": _S, "CUSTVENDNAME": _S, "BILLTO.EMAIL1": _S,
        "TERM.NAME": _S, "PONUMBER": _S, "CURRENCY": _S, "BASECURR": _S, "EXCHRATE": _S, "PRRECORDKEY": _I,
        "SHIPTO.MAILADDRESS.COUNTRYCODE": _S, "SHIPTO.MAILADDRESS.STATE": _S, "TAX_TREATMENT": _S,
        "TRX_SUBTOTAL": _S, "TRX_TOTAL": _S, "SUBTOTAL": _S, "TOTAL": _S},
        ("EXCHRATE", "TRX_SUBTOTAL", "TRX_TOTAL", "SUBTOTAL", "TOTAL"),
        ("RECORDNO", "DOCNO", "WHENCREATED", "WHENMODIFIED", "CUSTVENDID", "CURRENCY", "EXCHRATE")),
    "sodocument_entries": ("SODOCUMENTENTRY", LINE_QUERY, {
        "RECORDNO": _I, "DOCHDRNO": _I, "DOCHDRID": _S, "LINE_NO": _I, "ITEMID": _S, "ITEMNAME": _S, "UNIT": _S,
        "QUANTITY": _S, "TRX_PRICE": _S, "TRX_VALUE": _S, "VALUE": _S, "TAXRATE": _S, "TRX_TAX": _S,
        "CURRENCY": _S, "WHENMODIFIED": TS},
        ("QUANTITY", "TRX_PRICE", "TRX_VALUE", "VALUE", "TAXRATE", "TRX_TAX"),
        ("RECORDNO", "DOCHDRNO", "ITEMID", "QUANTITY", "TRX_VALUE", "WHENMODIFIED")),
    "arpayments": ("ARPYMT", None, {
        "RECORDNO": _I, "CUSTOMERID": _S, "PAYMENTMETHOD": _S, "DOCNUMBER": _S, "RECEIPTDATE": _D, "WHENPAID": _D,
        "AUWHENCREATED": TS, "WHENMODIFIED": TS, "CURRENCY": _S, "BASECURR": _S, "EXCHANGE_RATE": _S,
        "TRX_TOTALPAID": _S, "TOTALPAID": _S, "STATE": _S},
        ("EXCHANGE_RATE", "TRX_TOTALPAID", "TOTALPAID"),
        ("RECORDNO", "CURRENCY", "TRX_TOTALPAID", "WHENMODIFIED")),
    "arpayment_details": ("ARPYMTDETAIL", None, {
        "RECORDNO": _I, "PAYMENTKEY": _I, "RECORDKEY": _I, "TRX_PAYMENTAMOUNT": _S, "PAYMENTAMOUNT": _S,
        "CURRENCY": _S, "WHENMODIFIED": TS},
        ("TRX_PAYMENTAMOUNT", "PAYMENTAMOUNT"), ("RECORDNO", "PAYMENTKEY", "RECORDKEY", "TRX_PAYMENTAMOUNT")),
}


def column(name: str) -> str:
    """Intacct field names as warehouse columns: `SHIPTO.MAILADDRESS.COUNTRYCODE` -> `shipto_mailaddress_countrycode`."""
    return name.lower().replace(".", "_")


def _typed(row: dict, schema: dict[str, Any], money: tuple[str, ...], required: tuple[str, ...]) -> dict:
    for name in required:
        if not (row.get(name) or "").strip():
            raise BadRecord(f"{name} is missing")
    out: dict[str, Any] = {}
    for name, kind in schema.items():
        raw = (row.get(name) or "").strip()
        try:
            if not raw:
                value: Any = None
            elif kind == _I:
                value = int(raw)
            elif kind == _D:
                value = wire.parse_idate(raw)
            elif kind == TS:
                value = wire.parse_itimestamp(raw)
            elif name in money:
                value = format(Decimal(raw), "f")
                if not Decimal(raw).is_finite():
                    raise InvalidOperation
            else:
                value = raw
        except (ValueError, InvalidOperation):
            raise BadRecord(f"{name}={raw!r} is not a valid {'amount' if name in money else kind}") from None
        out[column(name)] = value
    if "CURRENCY" in schema:
        check_currency(out["currency"], "CURRENCY")
    return out


def _pages(client, obj: str, base: str | None, since: datetime | None) -> Iterator[list[dict]]:
    clauses = [base] if base else []
    if since is not None:
        clauses.append(f"WHENMODIFIED >= '{wire.itimestamp(since)}'")
    yield from client.query(obj, " AND ".join(clauses), page_size=PAGE_SIZE)


def sage_intacct_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    quarantine = quarantine if quarantine is not None else Quarantine("sage_intacct")
    shared = SharedClient("sage_intacct", connection, make_client)

    def make(name: str) -> Callable:
        obj, base, schema, money, required = RESOURCES[name]
        arrow_schema = {column(k): v for k, v in schema.items()}

        @dlt.resource(name=name, primary_key="recordno", write_disposition="merge")
        def resource(
            modified: dlt.sources.incremental[datetime] = dlt.sources.incremental("whenmodified", lag=LOOKBACK_S),
        ) -> Iterator[pa.Table]:
            with shared as client:
                for page in _pages(client, obj, base, modified.start_value):
                    rows = []
                    for row in page:
                        try:
                            rows.append(_typed(row, schema, money, required))
                        except BadRecord as exc:
                            quarantine.add(name, row, str(exc), record_id=row.get("RECORDNO"))
                    if rows:
                        yield rows_to_arrow(rows, arrow_schema)

        return resource

    @dlt.source(name="sage_intacct", max_table_nesting=0)
    def sage_intacct() -> Any:
        return [make(name) for name in RESOURCES]

    return sage_intacct()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {name: {column(k): v for k, v in spec[2].items()} for name, spec in RESOURCES.items()}
