"""Trade orders and invoices from the marts to NetSuite, keyed by externalId, crash-safe.

Reads `marts.fct_invoices` + `marts.fct_invoice_lines` (through `publish.marts.load_trade_invoices`)
and writes, in this order (a transaction references its customer's internal id):
- `customer`    externalId `CUST-<customer_id>`: companyName, email, subsidiary, currency;
- `salesOrder`  externalId `SO-<invoice number>`: the trade order as booked;
- `invoice`     externalId `<invoice number>` (also its `tranId`): due date from the terms.
Lines use two non-inventory sale items (goods, delivery) with the SKU in the description, the
quantity, the ex-tax `amount` from the mart (the unit `rate` too when there is no discount), the
legacy `taxCode` from the tax treatment and the mart's `tax1Amt`, so NetSuite's totals equal ours.

Every write is an upsert keyed by externalId — REST `PUT /record/v1/{type}/eid:{externalId}`
(default) or SOAP `upsertList` (`NETSUITE_TRANSPORT=soap`) — so replaying a write after a crash or
a lost answer updates the same record and can never duplicate it.  On top of that the shared
ledger protocol applies: keys left pending by a crash are looked up first (found and equal → done
without a write); unchanged records are not sent; a record NetSuite refuses (its per-record
status / 400 problem document) is recorded failed, quarantined with NetSuite's message, and the
rest go on.  Requests in flight stay within `NETSUITE_CONCURRENCY` (the account's limit is
shared with every other integration).  A mart invoice voided before it was published is never
sent; one voided after publishing is reported (neither API voids a transaction; do it in NetSuite).

Run it alone: `python -m finance_pipeline.platforms.netsuite.publish --data-dir DIR [--dry-run]`.
"""
from __future__ import annotations

import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Sequence
from xml.etree import ElementTree as ET

import duckdb

from finance_pipeline.http import ApiClient, ApiError
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.netsuite import client as ns_client
from finance_pipeline.platforms.netsuite import wire
from finance_pipeline.platforms.netsuite.wire import q
from finance_pipeline.publish.destinations import DryRun, quarantine_rejections
from finance_pipeline.publish.ledger import PublishLedger, content_hash
from finance_pipeline.publish.marts import MartInvoice, load_trade_invoices
from finance_pipeline.publish.mechanics import (
    Desired, ItemError, Mismatch, Outcome, PublishResult, Write, resolve_unknown, write_batches,
)
from finance_pipeline.settings import Settings, SettingsError
from finance_pipeline.warehouse import WarehouseTarget, open_warehouse

log = logging.getLogger("finance_pipeline.netsuite.publish")

DESTINATION = "netsuite"
MAPPING = "netsuite-trade/1"  # part of every hash: a new mapping re-sends everything (as upserts)
REST_BATCH = 50
SOAP_BATCH = 100  # upsertList's synchronous limit
TRANSACTIONS = ("salesOrder", "invoice")
CENT = Decimal("0.01")


class MappingError(ValueError):
    """A mart row NetSuite cannot express; recorded failed and quarantined, the rest go on."""


@dataclass(frozen=True)
class Reference:
    """Internal ids of the account's set-up records the mapping needs."""

    subsidiary: str
    item_goods: str
    item_shipping: str
    currencies: dict[str, str]
    tax_codes: dict[str, str]

    @classmethod
    def from_connection(cls, connection: Connection) -> "Reference":
        def pairs(raw: str | None, name: str) -> dict[str, str]:
            out = {}
            for part in (raw or "").split(","):
                k, sep, v = part.partition(":")
                if sep:
                    out[k.strip()] = v.strip()
            if not out:
                raise SettingsError(f"NetSuite: {name} is empty")
            return out

        return cls(connection.get("subsidiary") or "", connection.get("item_goods") or "",
                   connection.get("item_shipping") or "",
                   {k.upper(): v for k, v in pairs(connection.get("currency_ids"), "NETSUITE_CURRENCY_IDS").items()},
                   pairs(connection.get("taxcode_ids"), "NETSUITE_TAXCODE_IDS"))


# -- mapping ---------------------------------------------------------------------------------------
def external_id(value: str) -> str:
    """externalIds may hold letters, digits, `_` and `-` (REST)."""
    return re.sub(r"[^A-Za-z0-9_\-]", "-", value)


def customer_key(inv: MartInvoice) -> str:
    return external_id(f"CUST-{inv.customer_id}")


def order_key(inv: MartInvoice) -> str:
    return external_id(f"SO-{inv.invoice_number}")


def tax_code(ref: Reference, treatment: str, rate: Decimal | None) -> str:
    if treatment == "uk_vat":
        pct = Decimal(0) if rate is None else (rate * 100 if rate <= 1 else rate)
        kind = "standard" if pct >= 20 else "reduced" if pct == 5 else "zero" if pct == 0 else "standard"
    elif treatment == "eu_reverse_charge":
        kind = "eu_reverse_charge"
    elif treatment in ("export_zero_rated", "us_resale_exempt"):
        kind = "export"
    else:
        kind = "zero"
    try:
        return ref.tax_codes[kind]
    except KeyError:
        raise MappingError(f"no NetSuite tax code configured for {kind!r} (NETSUITE_TAXCODE_IDS)") from None


def customer_payload(inv: MartInvoice, ref: Reference) -> dict:
    name = (inv.customer_name or "").strip() or f"Customer {inv.customer_id}"
    body: dict[str, Any] = {"externalId": customer_key(inv), "companyName": name,
                            "subsidiary": {"id": ref.subsidiary}}
    if inv.customer_email:
        body["email"] = inv.customer_email
    if inv.currency in ref.currencies:
        body["currency"] = {"id": ref.currencies[inv.currency]}
    return body


def transaction_payload(record_type: str, inv: MartInvoice, ref: Reference) -> dict:
    """The record as sent, minus `entity` (the customer's internal id is known at send time)."""
    if not inv.customer_id:
        raise MappingError("the mart row has no customer_id")
    if inv.currency not in ref.currencies:
        raise MappingError(f"currency {inv.currency!r} has no NetSuite currency (NETSUITE_CURRENCY_IDS)")
    if not inv.lines:
        raise MappingError("the invoice has no lines")
    key = inv.invoice_number if record_type == "invoice" else order_key(inv)
    lines = []
    for line in inv.lines:
        item = ref.item_shipping if line.kind == "shipping" else ref.item_goods
        description = " — ".join(p for p in (line.sku, line.description) if p) or line.kind
        body: dict[str, Any] = {"item": {"id": item}, "description": description[:4000],
                                "quantity": line.quantity, "amount": line.line_amount.quantize(CENT),
                                "taxCode": {"id": tax_code(ref, inv.tax_treatment, line.tax_rate)},
                                "tax1Amt": line.tax_amount.quantize(CENT)}
        if not line.discount_amount:
            body["rate"] = line.unit_amount
        lines.append(body)
    body = {"externalId": external_id(key), "tranId": key, "tranDate": inv.issued_on.isoformat(),
            "currency": {"id": ref.currencies[inv.currency]}, "subsidiary": {"id": ref.subsidiary},
            "otherRefNum": inv.order_number or "", "memo": f"Trade order {inv.order_number or ''} ({inv.invoice_number})",
            "item": {"items": lines}}
    if record_type == "invoice":
        body["dueDate"] = inv.due_on.isoformat()
    return body


def _ref_id(value: Any) -> str | None:
    return str(value.get("id")) if isinstance(value, dict) and value.get("id") is not None else None


def _d(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(str(value))


def transaction_differences(remote: dict, inv: MartInvoice, record_type: str) -> list[Mismatch]:
    """Header figures of a NetSuite transaction against its mart invoice (recovery and read-back)."""
    key = inv.invoice_number if record_type == "invoice" else order_key(inv)
    out = []
    for field, want in (("total", inv.total_amount), ("taxTotal", inv.tax_amount),
                        ("subtotal", inv.subtotal_amount)):
        if _d(remote.get(field)).quantize(CENT) != want.quantize(CENT):
            out.append(Mismatch(key, field, want, remote.get(field)))
    if remote.get("tranDate") != inv.issued_on.isoformat():
        out.append(Mismatch(key, "tranDate", inv.issued_on.isoformat(), remote.get("tranDate")))
    if record_type == "invoice" and remote.get("dueDate") != inv.due_on.isoformat():
        out.append(Mismatch(key, "dueDate", inv.due_on.isoformat(), remote.get("dueDate")))
    lines = ((remote.get("item") or {}).get("items")) or []
    if len(lines) != len(inv.lines):
        out.append(Mismatch(key, "lines", len(inv.lines), len(lines)))
    return out


def transaction_is_current(remote: dict, want: dict, entity_id: str | None) -> bool:
    """Does NetSuite hold what we would send (lines included)?"""
    if entity_id is not None and _ref_id(remote.get("entity")) != entity_id:
        return False
    for name in ("tranId", "tranDate", "dueDate", "otherRefNum", "memo"):
        if (remote.get(name) or None) != (want.get(name) or None):
            return False
    if _ref_id(remote.get("currency")) != want["currency"]["id"]:
        return False
    got = ((remote.get("item") or {}).get("items")) or []
    lines = want["item"]["items"]
    if len(got) != len(lines):
        return False
    for g, w in zip(got, lines):
        if (_ref_id(g.get("item")) != w["item"]["id"] or _ref_id(g.get("taxCode")) != w["taxCode"]["id"]
                or _d(g.get("quantity")) != _d(w["quantity"]) or _d(g.get("amount")) != _d(w["amount"])
                or _d(g.get("tax1Amt")) != _d(w["tax1Amt"]) or (g.get("description") or "") != w["description"]):
            return False
    return True


def customer_is_current(remote: dict, want: dict) -> bool:
    return (remote.get("companyName") == want["companyName"]
            and (remote.get("email") or None) == want.get("email")
            and _ref_id(remote.get("subsidiary")) == want["subsidiary"]["id"])


# -- transports --------------------------------------------------------------------------------------
def _problem_message(exc: ApiError) -> str:
    try:
        import orjson

        body = orjson.loads(exc.body)
        details = body.get("o:errorDetails") or []
        return "; ".join(f"{d.get('o:errorCode')}: {d.get('detail')}" + (f" ({d['o:errorPath']})"
                                                                        if d.get("o:errorPath") else "")
                         for d in details) or body.get("title") or str(exc)
    except (ValueError, AttributeError):
        return str(exc)


class RestTransport:
    name = "rest"

    def __init__(self, connection: Connection, workers: int) -> None:
        self.client: ApiClient = ns_client.make_rest_client(connection, workers)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="netsuite")
        self.stats = self.client.stats

    def _get(self, record_type: str, key: str) -> dict | None:
        try:
            return self.client.get_json(f"{record_type}/eid:{key}", params={"expandSubResources": "true"})
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def find(self, record_type: str, keys: Sequence[str]) -> dict[str, dict]:
        docs = self.pool.map(lambda k: (k, self._get(record_type, k)), keys)
        return {k: d for k, d in docs if d is not None}

    def _put(self, record_type: str, key: str, body: dict) -> Outcome:
        try:
            resp = self.client.request("PUT", f"{record_type}/eid:{key}", json=body, expect_json=False)
        except ApiError as exc:
            if exc.status in (401, 403):
                raise
            if exc.status == 400:
                return Outcome(False, error=_problem_message(exc))
            return Outcome(False, error=f"no definitive answer: {exc}")
        location = resp.headers.get("location", "")
        return Outcome(True, location.rstrip("/").rsplit("/", 1)[-1] or None)

    def upsert(self, record_type: str, batch: Sequence[Write]) -> list[Outcome]:
        return list(self.pool.map(lambda w: self._put(record_type, w.key, w.body), batch))

    def close(self) -> None:
        self.pool.shutdown()
        self.client.close()
        self.client.auth.close()  # type: ignore[union-attr]


def _status(el: ET.Element) -> tuple[bool, str]:
    status = el.find(q("core", "status"))
    if status is None:
        return False, "no status in the answer"
    if status.get("isSuccess") == "true":
        return True, ""
    details = [f"{d.findtext(q('core', 'code'))}: {d.findtext(q('core', 'message'))}"
               for d in status.findall(q("core", "statusDetail"))]
    return False, "; ".join(details) or "refused"


class SoapTransport:
    name = "soap"

    def __init__(self, connection: Connection, workers: int) -> None:
        self.client = ns_client.SoapClient(connection, workers)
        self.stats = self.client.stats

    def find(self, record_type: str, keys: Sequence[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for start in range(0, len(keys), 1000):
            refs = []
            for key in keys[start:start + 1000]:
                ref = ET.Element(q("messages", "baseRef"), {"type": record_type, "externalId": key})
                ref.set(q("xsi", "type"), "core:RecordRef")
                refs.append(ref)
            answer = self.client.call("getList", refs)
            for rr in answer.iter(q("messages", "readResponse")):
                ok, _ = _status(rr)
                record = rr.find(q("messages", "record"))
                if ok and record is not None:
                    _, doc = wire.parse_record(record)
                    found[doc["externalId"]] = doc
        return found

    def upsert(self, record_type: str, batch: Sequence[Write]) -> list[Outcome]:
        answer = self.client.call("upsertList", [wire.record_xml(q("messages", "record"), record_type, w.body)
                                                 for w in batch])
        out = []
        for wr in answer.iter(q("messages", "writeResponse")):
            ok, message = _status(wr)
            ref = wr.find(q("messages", "baseRef"))
            out.append(Outcome(True, ref.get("internalId") if ref is not None else None) if ok
                       else Outcome(False, error=message))
        return out

    def close(self) -> None:
        self.client.close()


# -- one run ----------------------------------------------------------------------------------------
class _Run:
    def __init__(self, transport: Any, ledger: PublishLedger, result: PublishResult, ref: Reference,
                 batch_size: int) -> None:
        self.transport = transport
        self.ledger = ledger
        self.result = result
        self.ref = ref
        self.batch_size = batch_size
        self.customer_ids: dict[str, str] = {}
        self.rejected: list[tuple[str, str, Any, str]] = []

    def _send(self, record_type: str) -> Callable[[list[Write]], list[Outcome]]:
        def send(batch: list[Write]) -> list[Outcome]:
            outcomes = self.transport.upsert(record_type, batch)
            for write, outcome in zip(batch, outcomes):
                if not outcome.ok and not (outcome.error or "").startswith("no definitive answer"):
                    self.rejected.append((f"netsuite.{record_type}", write.key, write.body,
                                          f"NetSuite refused the {record_type}: {outcome.error}"))
            return outcomes
        return send

    def _uncertain(self, record_type: str, desired: dict[str, Desired]) -> dict[str, Desired]:
        """Keys whose remote state is unknown: pending after a crash, or failed before an id was known.
        Never-published keys need no look-up: the upsert by externalId cannot duplicate."""
        entries = self.ledger.entries(record_type)
        return {k: d for k, d in desired.items() if k in entries and (
            entries[k].status == "pending" or (entries[k].status == "failed" and not entries[k].remote_id))}

    def _publish(self, record_type: str, desired: dict[str, Desired], is_current: Callable[[dict, Desired], bool],
                 body: Callable[[Desired], dict | None]) -> None:
        counts = self.result.of(record_type)
        resolve_unknown(self.ledger, record_type, self._uncertain(record_type, desired),
                        lambda keys: self.transport.find(record_type, keys), remote_id_of=lambda d: str(d["id"]),
                        is_current=is_current, counts=counts, batch_size=self.batch_size)
        plan = self.ledger.plan(record_type, [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged)
        for entry in plan.unresolved:
            counts.unresolved += 1
            self.result.errors.append(ItemError(record_type, entry.business_key, "still pending after look-up"))
        writes, blocked = [], []
        for op, key, remote_id in ([("create", k, None) for k in plan.new]
                                   + [("update", e.business_key, e.remote_id) for e in plan.changed]):
            want = desired[key]
            payload = body(want)
            if payload is None:
                blocked.append((key, want.content_hash, "its customer has no NetSuite record (see the customer's "
                                                        "error); not sent", remote_id))
                continue
            writes.append(Write(op, key, want.content_hash, remote_id, payload))
        self.ledger.mark_failed_many(record_type, blocked)
        counts.failed += len(blocked)
        self.result.errors.extend(ItemError(record_type, k, e) for k, _, e, _ in blocked)
        write_batches(self.ledger, record_type, writes, self._send(record_type), counts=counts,
                      errors=self.result.errors, batch_size=self.batch_size)

    def publish_customers(self, invoices: list[MartInvoice]) -> None:
        desired: dict[str, Desired] = {}
        for inv in invoices:
            if inv.voided or not inv.customer_id:
                continue
            payload = customer_payload(inv, self.ref)
            desired[payload["externalId"]] = Desired(payload["externalId"],
                                                     content_hash({"v": MAPPING, "customer": payload}), payload)
        self._publish("customer", desired, lambda remote, want: customer_is_current(remote, want.record),
                      lambda want: want.record)
        self.customer_ids = {k: e.remote_id for k, e in self.ledger.entries("customer").items()
                             if e.remote_id and e.status == "done"}

    def publish_transactions(self, record_type: str, invoices: list[MartInvoice]) -> None:
        counts = self.result.of(record_type)
        desired: dict[str, Desired] = {}
        unmappable, voided_after = [], []
        published = self.ledger.entries(record_type)
        for inv in invoices:
            key = inv.invoice_number if record_type == "invoice" else order_key(inv)
            key = external_id(key)
            if inv.voided:
                entry = published.get(key)
                if entry is not None and entry.remote_id:
                    voided_after.append(key)
                continue
            try:
                payload = transaction_payload(record_type, inv, self.ref)
            except MappingError as exc:
                unmappable.append((key, None, f"not sent: {exc}", None))
                self.rejected.append((f"netsuite.{record_type}", key, inv.invoice_number, f"not sent: {exc}"))
                continue
            desired[key] = Desired(key, content_hash({"v": MAPPING, "customer": customer_key(inv), "body": payload}),
                                   _Tx(inv, payload))
        self.ledger.mark_failed_many(record_type, unmappable)
        counts.failed += len(unmappable)
        self.result.errors.extend(ItemError(record_type, k, e) for k, _, e, _ in unmappable)
        for key in voided_after:
            self.result.errors.append(ItemError(record_type, key, "voided in the marts after it was published: void "
                                                "it in NetSuite (the APIs used here cannot void a transaction)"))

        def body(want: Desired) -> dict | None:
            entity = self.customer_ids.get(customer_key(want.record.inv))
            return None if entity is None else {"entity": {"id": entity}, **want.record.payload}

        def is_current(remote: dict, want: Desired) -> bool:
            return transaction_is_current(remote, want.record.payload,
                                          self.customer_ids.get(customer_key(want.record.inv)))

        self._publish(record_type, desired, is_current, body)

    def read_back(self, invoices: list[MartInvoice]) -> None:
        live = [inv for inv in invoices if not inv.voided]
        for record_type in TRANSACTIONS:
            keys = [external_id(inv.invoice_number if record_type == "invoice" else order_key(inv)) for inv in live]
            found: dict[str, dict] = {}
            for start in range(0, len(keys), 200):
                found.update(self.transport.find(record_type, keys[start:start + 200]))
            self.result.read_back += len(found)
            for key, inv in zip(keys, live):
                remote = found.get(key)
                if remote is None:
                    self.result.mismatches.append(Mismatch(key, "presence", f"in NetSuite ({record_type})", "missing"))
                    continue
                self.result.mismatches.extend(transaction_differences(remote, inv, record_type))


@dataclass(frozen=True)
class _Tx:
    inv: MartInvoice
    payload: dict


def make_transport(connection: Connection, kind: str | None = None) -> Any:
    kind = kind or ns_client.transport()
    workers = ns_client.concurrency()
    return SoapTransport(connection, workers) if kind == "soap" else RestTransport(connection, workers)


def _dry_run(con: duckdb.DuckDBPyConnection, invoices: list[MartInvoice], ref: Reference, kind: str) -> DryRun:
    plan = DryRun(DESTINATION)
    has_ledger = con.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'ops' "
                             "AND table_name = 'publish_ledger'").fetchone()[0]
    ledger = PublishLedger(con, DESTINATION)
    verb = "upsertList" if kind == "soap" else "PUT eid"
    for record_type in ("customer", *TRANSACTIONS):
        entries = ledger.entries(record_type) if has_ledger else {}
        seen = set()
        for inv in invoices:
            if inv.voided:
                continue
            try:
                if record_type == "customer":
                    payload = customer_payload(inv, ref)
                    digest = content_hash({"v": MAPPING, "customer": payload})
                else:
                    payload = {"entity": {"externalId": customer_key(inv)},
                               **transaction_payload(record_type, inv, ref)}
                    digest = content_hash({"v": MAPPING, "customer": customer_key(inv),
                                           "body": transaction_payload(record_type, inv, ref)})
            except MappingError as exc:
                plan.add(record_type, "not sent", inv.invoice_number, None, reason=str(exc))
                continue
            key = payload["externalId"]
            if key in seen:
                continue
            seen.add(key)
            entry = entries.get(key)
            if entry is not None and entry.status == "done" and entry.content_hash == digest:
                continue
            plan.add(record_type, f"{verb} ({'update' if entry is not None and entry.remote_id else 'create'})",
                     key, payload)
    return plan


def publish_trade(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget, *,
                  dry_run: bool | None = None, transport: Any = None, read_back: bool = True) -> PublishResult:
    """Publish customers, sales orders and invoices to NetSuite; read back; compare."""
    started = time.monotonic()
    dry_run = settings.publish_dry_run if dry_run is None else dry_run
    ref = Reference.from_connection(connection)
    con = open_warehouse(warehouse_path, read_only=dry_run)
    result = PublishResult(DESTINATION, "dry-run", primary="invoice")
    own = transport is None
    run = None
    try:
        invoices = load_trade_invoices(con)
        if dry_run:
            plan = _dry_run(con, invoices, ref, ns_client.transport())
            result.dry_run = {**plan.summary(), "saved_to": plan.save(settings)}
            return result
        ledger = PublishLedger(con, DESTINATION).ensure_schema()
        result.run_id = ledger.run_id
        for kind in ("customer", *TRANSACTIONS):
            result.of(kind)
        transport = transport or make_transport(connection)
        batch = SOAP_BATCH if transport.name == "soap" else REST_BATCH
        run = _Run(transport, ledger, result, ref, batch)
        run.publish_customers(invoices)
        for record_type in TRANSACTIONS:
            run.publish_transactions(record_type, invoices)
        if read_back:
            run.read_back(invoices)
    finally:
        if transport is not None:
            result.requests = transport.stats["requests"]
            if own:
                transport.close()
        con.close()
        result.seconds = time.monotonic() - started
    if run is not None and run.rejected:
        result.quarantined = quarantine_rejections(settings, DESTINATION, run.rejected)
    inv, so, cu = result.of("invoice"), result.of("salesOrder"), result.of("customer")
    log.info("netsuite publish (%s): invoices created %d, updated %d, unchanged %d, failed %d, unresolved %d, "
             "recovered %d; sales orders written %d; customers written %d; %d read back, %d mismatches, "
             "%d requests, %.1f s", getattr(transport, "name", "?"), inv.created, inv.updated, inv.unchanged,
             inv.failed, inv.unresolved, inv.recovered, so.written, cu.written, result.read_back,
             len(result.mismatches), result.requests, result.seconds)
    return result


def check_read_back(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget) -> PublishResult:
    """Only the read-back (the asset check)."""
    result = PublishResult(DESTINATION, "read-back", primary="invoice")
    con = open_warehouse(warehouse_path, read_only=True)
    transport = make_transport(connection)
    try:
        invoices = load_trade_invoices(con)
        _Run(transport, PublishLedger(con, DESTINATION), result, Reference.from_connection(connection),
             REST_BATCH).read_back(invoices)
    finally:
        transport.close()
        con.close()
    return result


def main(argv: list[str] | None = None) -> int:
    from finance_pipeline.publish.destinations import run_cli

    return run_cli(DESTINATION, publish_trade, argv, "Publish trade orders and invoices to NetSuite.")


if __name__ == "__main__":
    import sys

    sys.exit(main())
