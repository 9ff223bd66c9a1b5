"""The Stripe dlt source: charges, refunds, disputes, balance transactions, payouts and which
balance transactions each payout carried.

Every resource yields one Arrow table per page (nested fields as JSON text, money as integer minor
units exactly as Stripe sends it, Unix seconds as UTC timestamps), with `primary_key` and
`write_disposition="merge"`.  Records that fail validation (no id, unknown currency, an amount
that is not an integer) go to the quarantine with the reason; the run goes on.

How each resource stays current
-------------------------------
Stripe lists have no updated-at filter, and `created` never moves, so:

- `balance_transactions` are immutable (apart from `status`, pending -> available within days):
  a `created[gte]` cursor (`dlt.sources.incremental`) re-reading the last week (`BT_LAG_S`).
- `charges`, `refunds`, `disputes`, `payouts` change after creation (a late refund or a dispute
  on an old charge, a dispute closing, a payout landing).  Each run:
    1. notes the newest event on the account (the *watermark*) before reading anything;
    2. if it has an events cursor that Stripe still retains (`GET /v1/events/{id}` answers; events
       live 30 days), lists `/v1/events` of its types since that cursor (minus `EVENTS_LAG_S`) and
       collects the objects they touched;
    3. lists new objects by `created[gte]` = newest created seen minus a lag;
    4. loads the touched objects the list did not return: from the event's `data.object` when the
       newest event about an object carries it (rendered at our pinned API version), else by
       `GET /v1/<objects>/{id}` (a charge touched by a dispute event, say);
    5. stores the watermark as the next events cursor.
  Without a cursor (first run), or when the events cursor has expired (more than 30 days without a
  successful run), step 3 lists everything instead: a full re-list, merged on `id`.
  Cursors live in the resource's dlt state, committed only with a successful load.
- `payout_balance_transactions`: for every payout created since its own cursor (minus the payout
  lag), `GET /v1/balance_transactions?payout=po_…` (the only way Stripe tells which transactions a
  payout carried, its own `payout` transaction included), one row per (payout, balance
  transaction).  It lists payouts itself rather than being a dlt transformer of `payouts`: dlt
  runs a transformer's parent even when only the transformer is selected, and the parent's
  cursors would then move without its table being loaded.

Objects seen twice in a run (a duplicated page, an object both listed and touched by an event)
are loaded once: the list copy, which is the fresher one, wins.
"""
from __future__ import annotations

import logging
import threading
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Iterator

import dlt
import pyarrow as pa

from finance_pipeline.http.client import ApiClient
from finance_pipeline.http.pagination import cursor_pages
from finance_pipeline.ingest.arrow import JSON, TS, rows_to_arrow
from finance_pipeline.ingest.quarantine import BadRecord, Quarantine, check_currency
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.stripe import API_VERSION

log = logging.getLogger("finance_pipeline.stripe")

PAGE_LIMIT = 100
CREATED_LAG_S = 3600  # new objects: re-read the hour before the newest created seen
PAYOUT_LAG_S = 5 * 86400  # payouts: re-read five days, so in_transit -> paid arrives even without events
BT_LAG_S = 7 * 86400  # balance transactions: re-read a week, so pending -> available arrives
EVENTS_LAG_S = 3600  # events: re-read the hour before the cursor (late-written events)

# Events that mean an existing charge changed (new charges come from the created cursor, so
# charge.succeeded / charge.failed are not read); dispute and refund events name their charge.
CHARGE_CHANGE_EVENTS = [
    "charge.captured", "charge.updated", "charge.refunded", "charge.refund.updated", "charge.expired",
    "charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed",
    "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated",
]

RATE = pa.decimal128(24, 12)  # exchange rates: a JSON float on the wire, kept exact as decimal
_RATE_QUANTUM = Decimal("1e-12")

CHARGES = {
    "id": pa.string(), "amount": pa.int64(), "amount_captured": pa.int64(), "amount_refunded": pa.int64(),
    "balance_transaction": pa.string(), "billing_details": JSON, "calculated_statement_descriptor": pa.string(),
    "captured": pa.bool_(), "created": TS, "currency": pa.string(), "customer": pa.string(),
    "description": pa.string(), "disputed": pa.bool_(), "failure_code": pa.string(),
    "failure_message": pa.string(), "livemode": pa.bool_(), "metadata": JSON, "outcome": JSON,
    "paid": pa.bool_(), "payment_intent": pa.string(), "payment_method": pa.string(),
    "payment_method_details": JSON, "receipt_email": pa.string(), "refunded": pa.bool_(),
    "statement_descriptor": pa.string(), "status": pa.string(),
}
REFUNDS = {
    "id": pa.string(), "amount": pa.int64(), "balance_transaction": pa.string(), "charge": pa.string(),
    "created": TS, "currency": pa.string(), "metadata": JSON, "payment_intent": pa.string(),
    "reason": pa.string(), "receipt_number": pa.string(), "status": pa.string(),
}
DISPUTES = {
    "id": pa.string(), "amount": pa.int64(), "balance_transactions": JSON, "charge": pa.string(),
    "created": TS, "currency": pa.string(), "evidence_details": JSON, "is_charge_refundable": pa.bool_(),
    "livemode": pa.bool_(), "metadata": JSON, "payment_intent": pa.string(), "reason": pa.string(),
    "status": pa.string(),
}
BALANCE_TRANSACTIONS = {
    "id": pa.string(), "amount": pa.int64(), "available_on": TS, "created": TS, "currency": pa.string(),
    "description": pa.string(), "exchange_rate": RATE, "fee": pa.int64(), "fee_details": JSON,
    "net": pa.int64(), "reporting_category": pa.string(), "source": pa.string(), "status": pa.string(),
    "type": pa.string(),
}
PAYOUTS = {
    "id": pa.string(), "amount": pa.int64(), "arrival_date": TS, "automatic": pa.bool_(),
    "balance_transaction": pa.string(), "created": TS, "currency": pa.string(), "description": pa.string(),
    "destination": pa.string(), "failure_balance_transaction": pa.string(), "failure_code": pa.string(),
    "failure_message": pa.string(), "livemode": pa.bool_(), "metadata": JSON, "method": pa.string(),
    "reconciliation_status": pa.string(), "source_type": pa.string(), "statement_descriptor": pa.string(),
    "status": pa.string(), "type": pa.string(),
}
PAYOUT_BALANCE_TRANSACTIONS = {
    "payout_id": pa.string(), "balance_transaction_id": pa.string(), "type": pa.string(),
    "reporting_category": pa.string(), "source": pa.string(), "amount": pa.int64(), "fee": pa.int64(),
    "net": pa.int64(), "currency": pa.string(), "created": TS,
}

PRIMARY_KEYS = {
    "charges": ("id",), "refunds": ("id",), "disputes": ("id",), "balance_transactions": ("id",),
    "payouts": ("id",), "payout_balance_transactions": ("payout_id", "balance_transaction_id"),
}

# integer minor-unit fields every record of the entity must carry
MONEY = {
    "charges": ("amount", "amount_captured", "amount_refunded"),
    "refunds": ("amount",),
    "disputes": ("amount",),
    "balance_transactions": ("amount", "fee", "net"),
    "payouts": ("amount",),
    "payout_balance_transactions": ("amount", "fee", "net"),
}


# ------------------------------------------------------------------------------- records -> Arrow
def _rate(value: Any) -> Decimal | None:
    """Stripe sends `exchange_rate` as a JSON float; its shortest repr is the rate Stripe meant."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise BadRecord(f"exchange_rate={value!r} is not a number")
    try:
        return Decimal(repr(value) if isinstance(value, float) else str(value)).quantize(_RATE_QUANTUM)
    except InvalidOperation:
        raise BadRecord(f"exchange_rate={value!r} is not a number") from None


def _row(entity: str, record: Any, schema: dict[str, pa.DataType]) -> dict[str, Any]:
    """Validate one API record and shape it for `rows_to_arrow` (raises `BadRecord`)."""
    if not isinstance(record, dict):
        raise BadRecord(f"not an object: {type(record).__name__}")
    key = "balance_transaction_id" if entity == "payout_balance_transactions" else "id"
    if not isinstance(record.get(key), str) or not record[key]:
        raise BadRecord(f"missing {key}")
    check_currency(record.get("currency"))
    for name in MONEY[entity]:
        value = record.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise BadRecord(f"{name}={value!r} is not an integer amount in minor units")
    if not isinstance(record.get("created"), int) or isinstance(record.get("created"), bool):
        raise BadRecord(f"created={record.get('created')!r} is not a Unix timestamp")
    row: dict[str, Any] = {}
    for name, typ in schema.items():
        value = record.get(name)
        if isinstance(value, dict) and typ == pa.string() and "id" in value:
            value = value["id"]  # an expanded reference: keep its id
        if value is None:
            row[name] = None
        elif typ == TS:
            if not isinstance(value, int) or isinstance(value, bool):
                raise BadRecord(f"{name}={value!r} is not a Unix timestamp")
            row[name] = value
        elif typ == RATE:
            row[name] = _rate(value)
        elif typ == JSON:
            row[name] = value
        elif typ == pa.int64():
            if not isinstance(value, int) or isinstance(value, bool):
                raise BadRecord(f"{name}={value!r} is not an integer")
            row[name] = value
        elif typ == pa.bool_():
            if not isinstance(value, bool):
                raise BadRecord(f"{name}={value!r} is not a boolean")
            row[name] = value
        else:
            if not isinstance(value, str):
                raise BadRecord(f"{name}={value!r} is not a string")
            row[name] = value
    return row


class _Run:
    """What the resources of one source instance share: the client (made on first use, so the
    source builds without a connection), the quarantine, and the account's newest event at the
    start of the run (the next events cursor of every mutable resource)."""

    def __init__(self, connection: Connection | None, quarantine: Quarantine) -> None:
        self.connection = connection
        self.quarantine = quarantine
        self._client: ApiClient | None = None
        self._watermark: tuple[dict[str, Any] | None] | None = None
        self._lock = threading.Lock()

    def client(self) -> ApiClient:
        with self._lock:
            if self._client is None:
                if self.connection is None:
                    raise RuntimeError("stripe_source() was built without a connection (definition time); "
                                       "pass a Connection to load data")
                from finance_pipeline.platforms.stripe.client import make_client

                self._client = make_client(self.connection)
            return self._client

    def watermark(self) -> dict[str, Any] | None:
        """{"id", "created"} of the newest event on the account when the run started (None: no events)."""
        client = self.client()
        with self._lock:
            if self._watermark is None:
                body = client.get_json("/v1/events", params={"limit": 1})
                newest = body["data"][0] if body["data"] else None
                self._watermark = ({"id": newest["id"], "created": newest["created"]} if newest else None,)
            return self._watermark[0]

    def event_retained(self, event_id: str) -> bool:
        """Stripe serves events for 30 days: if the cursor's event still answers, every event
        after it can still be listed."""
        resp = self.client().get(f"/v1/events/{event_id}", ok_statuses=(404,))
        return resp.status == 200

    def table(self, entity: str, records: Iterable[Any], schema: dict[str, pa.DataType],
              seen: set[str]) -> tuple[pa.Table | None, int | None]:
        """Valid, not-yet-seen records -> (Arrow table or None, newest `created` among them)."""
        rows, newest = [], None
        keys = PRIMARY_KEYS[entity]
        for record in records:
            try:
                row = _row(entity, record, schema)
            except BadRecord as exc:
                self.quarantine.add(entity, record, str(exc))
                continue
            ident = "/".join(str(row[k]) for k in keys)
            if ident in seen:
                continue
            seen.add(ident)
            rows.append(row)
            newest = row["created"] if newest is None else max(newest, row["created"])
        if not rows:
            return None, newest
        table = rows_to_arrow(rows, schema)
        # primary-key columns are NOT NULL in dlt's schema: say so in Arrow's too
        return table.cast(pa.schema([pa.field(f.name, f.type, nullable=f.name not in keys) for f in table.schema])), newest


def _charge_targets(event: dict[str, Any]) -> Iterator[tuple[str, dict | None]]:
    obj = event["data"]["object"]
    if obj.get("object") == "charge":
        yield obj["id"], obj
    elif isinstance(obj.get("charge"), str):  # a dispute or refund event: the charge changed too
        yield obj["charge"], None


def _own_targets(object_name: str) -> Callable[[dict[str, Any]], Iterator[tuple[str, dict | None]]]:
    def targets(event: dict[str, Any]) -> Iterator[tuple[str, dict | None]]:
        obj = event["data"]["object"]
        if obj.get("object") == object_name:
            yield obj["id"], obj

    return targets


def _mutable_objects(run: _Run, entity: str, path: str, schema: dict[str, pa.DataType],
                     event_filter: dict[str, Any], targets: Callable[[dict], Iterator[tuple[str, dict | None]]],
                     created_lag_s: int) -> Iterator[pa.Table]:
    """New objects by created cursor + objects changed since the events cursor (module docstring)."""
    state = dlt.current.resource_state()
    client = run.client()
    watermark = run.watermark()
    created_cursor = state.get("created_cursor")
    events_cursor = state.get("events_cursor")

    changed: dict[str, dict | None] = {}
    incremental = (created_cursor is not None and events_cursor is not None
                   and run.event_retained(events_cursor["id"]))
    if incremental:
        params = {**event_filter, "created[gte]": events_cursor["created"] - EVENTS_LAG_S, "limit": PAGE_LIMIT}
        for page in cursor_pages(client, "/v1/events", params):
            for event in page["data"]:  # newest first: the first event about an object is its latest state
                current = event.get("api_version") in (None, API_VERSION)
                for object_id, obj in targets(event):
                    changed.setdefault(object_id, obj if current else None)
    elif created_cursor is not None:
        log.warning("stripe %s: the events cursor is missing or older than Stripe's 30-day event "
                    "retention; listing every %s again", entity, entity)

    seen: set[str] = set()
    newest = created_cursor
    params = {"limit": PAGE_LIMIT}
    if incremental:
        params["created[gte]"] = created_cursor - created_lag_s
    for page in cursor_pages(client, path, params):
        table, page_newest = run.table(entity, page["data"], schema, seen)
        if page_newest is not None:
            newest = page_newest if newest is None else max(newest, page_newest)
        if table is not None:
            yield table

    refetched = 0
    batch: list[dict] = []
    for object_id, obj in changed.items():
        if object_id in seen:
            continue
        if obj is None:
            resp = client.get(f"{path}/{object_id}", ok_statuses=(404,))
            refetched += 1
            if resp.status == 404:
                log.warning("stripe %s: %s was named by an event but does not exist", entity, object_id)
                continue
            obj = resp.json()
        batch.append(obj)
        if len(batch) >= PAGE_LIMIT:
            table, _ = run.table(entity, batch, schema, seen)
            batch = []
            if table is not None:
                yield table
    if batch:
        table, _ = run.table(entity, batch, schema, seen)
        if table is not None:
            yield table

    state["created_cursor"] = newest
    state["events_cursor"] = watermark if watermark is not None else (events_cursor if incremental else None)
    state["last_run"] = {"mode": "incremental" if incremental else "full", "changed_by_events": len(changed),
                         "refetched": refetched}


def stripe_source(connection: Connection | None = None, quarantine: Quarantine | None = None) -> Any:
    """The dlt source `stripe`.  Builds without a connection (Dagster reads resource names at
    definition time); iterating it then fails with a clear message."""
    run = _Run(connection, quarantine if quarantine is not None else Quarantine("stripe"))

    @dlt.resource(name="balance_transactions", primary_key="id", write_disposition="merge")
    def balance_transactions(
        created: dlt.sources.incremental[Any] = dlt.sources.incremental("created", lag=BT_LAG_S),
    ) -> Iterator[pa.Table]:
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        since = created.last_value  # already stepped back by the lag
        if since is not None:
            params["created[gte]"] = int(since.timestamp())
        seen: set[str] = set()
        for page in cursor_pages(run.client(), "/v1/balance_transactions", params):
            table, _ = run.table("balance_transactions", page["data"], BALANCE_TRANSACTIONS, seen)
            if table is not None:
                yield table

    @dlt.resource(name="charges", primary_key="id", write_disposition="merge")
    def charges() -> Iterator[pa.Table]:
        yield from _mutable_objects(run, "charges", "/v1/charges", CHARGES, {"types[]": CHARGE_CHANGE_EVENTS},
                                    _charge_targets, CREATED_LAG_S)

    @dlt.resource(name="refunds", primary_key="id", write_disposition="merge")
    def refunds() -> Iterator[pa.Table]:
        types = ["refund.created", "refund.updated", "refund.failed", "charge.refund.updated"]
        yield from _mutable_objects(run, "refunds", "/v1/refunds", REFUNDS, {"types[]": types},
                                    _own_targets("refund"), CREATED_LAG_S)

    @dlt.resource(name="disputes", primary_key="id", write_disposition="merge")
    def disputes() -> Iterator[pa.Table]:
        yield from _mutable_objects(run, "disputes", "/v1/disputes", DISPUTES, {"type": "charge.dispute.*"},
                                    _own_targets("dispute"), CREATED_LAG_S)

    @dlt.resource(name="payouts", primary_key="id", write_disposition="merge")
    def payouts() -> Iterator[pa.Table]:
        yield from _mutable_objects(run, "payouts", "/v1/payouts", PAYOUTS, {"type": "payout.*"},
                                    _own_targets("payout"), PAYOUT_LAG_S)

    @dlt.resource(name="payout_balance_transactions", primary_key=("payout_id", "balance_transaction_id"),
                  write_disposition="merge")
    def payout_balance_transactions() -> Iterator[pa.Table]:
        # Its own cursor over payouts (not a transformer of `payouts`): materialising this table
        # alone must not move the payouts resource's cursors.  A payout's transactions are fixed
        # when it is created; the lag re-reads recent payouts all the same.
        state = dlt.current.resource_state()
        client = run.client()
        cursor = state.get("payout_created_cursor")
        params: dict[str, Any] = {"limit": PAGE_LIMIT}
        if cursor is not None:
            params["created[gte]"] = cursor - PAYOUT_LAG_S
        done: set[str] = set()
        seen: set[str] = set()
        newest = cursor
        for page in cursor_pages(client, "/v1/payouts", params):
            for payout in page["data"]:
                payout_id, created = payout.get("id"), payout.get("created")
                if not isinstance(payout_id, str) or not isinstance(created, int) or payout_id in done:
                    continue
                done.add(payout_id)
                newest = created if newest is None else max(newest, created)
                records = []
                for body in cursor_pages(client, "/v1/balance_transactions", {"payout": payout_id, "limit": PAGE_LIMIT}):
                    for bt in body["data"]:
                        if isinstance(bt, dict):
                            bt = {**bt, "payout_id": payout_id, "balance_transaction_id": bt.get("id")}
                        records.append(bt)
                table, _ = run.table("payout_balance_transactions", records, PAYOUT_BALANCE_TRANSACTIONS, seen)
                if table is not None:
                    yield table
        state["payout_created_cursor"] = newest

    @dlt.source(name="stripe", max_table_nesting=0)
    def stripe() -> Any:
        return (balance_transactions, charges, refunds, disputes, payouts, payout_balance_transactions)

    return stripe()


# the columns of each raw table, for creating it empty before its first row (ingest/pipeline.py)
RAW_TABLES = {"charges": CHARGES, "refunds": REFUNDS, "disputes": DISPUTES, "balance_transactions": BALANCE_TRANSACTIONS,
              "payouts": PAYOUTS, "payout_balance_transactions": PAYOUT_BALANCE_TRANSACTIONS}
