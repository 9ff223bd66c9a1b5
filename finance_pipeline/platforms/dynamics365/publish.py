"""Trade invoices of the other channels → sales orders in Business Central, crash-safe.

Reads `marts.fct_invoices` + `marts.fct_invoice_lines` through
`publish.marts.load_trade_invoices(con, exclude_channel="dynamics365")` (the invoices BC raised
itself are never written back) and writes, in this order:
- `customer`    by `number` = the mart's customer id: `POST customers` (number, displayName, email;
                each order carries its own currency) when BC has none; an existing customer is BC's
                master data and is used as it is;
- `salesOrder`  one per invoice, `externalDocumentNumber` = the invoice number: `POST salesOrders`
                with the lines as a deep insert (`salesOrderLines`: goods as `Item` lines when BC knows
                the SKU, else on the trade sales G/L account 40100; freight on 40250; quantity,
                unitPrice, discountAmount and the tax group of the treatment), so BC's totals equal
                the marts'.  A changed invoice: `PATCH salesOrders({id})` with `If-Match` (the ETag
                read just before), its lines deleted and posted again.  A voided invoice: `DELETE
                salesOrders({id})` with `If-Match`; one voided before it was published is never sent.

BC has no idempotency header: the business key is `externalDocumentNumber`, and every key the
ledger cannot vouch for (new, left pending by a crash, failed without an id) is looked up first
(`$filter=externalDocumentNumber eq '…'`, or one paged listing when there are many) — found and
equal → done without a write; found and different → updated in place; absent → posted.  New
customers and orders go up to 100 at a time in one OData JSON `$batch` (`POST …/api/v2.0/$batch`,
no `Isolation`: each operation stands alone); the batch's keys are marked pending before it is sent
and done / failed from each operation's own answer, so a kill -9 at any moment leaves at most one
batch of keys to look up (one paged listing).  Updates and voids are one order at a time.
A record BC refuses (its `{"error": {"code", "message"}}`) is recorded failed and quarantined with
BC's message; the rest go on.  Read-back lists every sales order and compares it with the marts.

Run it alone: `python -m finance_pipeline.platforms.dynamics365.publish --data-dir DIR [--dry-run]`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import duckdb

from finance_pipeline.http import ApiClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.dynamics365 import client as bc
from finance_pipeline.platforms.dynamics365.odata import quote
from finance_pipeline.platforms.dynamics365.source import odata_pages
from finance_pipeline.publish.destinations import DryRun, quarantine_rejections
from finance_pipeline.publish.ledger import PublishLedger, content_hash
from finance_pipeline.publish.marts import MartInvoice, load_trade_invoices
from finance_pipeline.publish.mechanics import (
    Desired, ItemError, Mismatch, Outcome, PublishResult, Write, resolve_unknown, write_batches,
)
from finance_pipeline.settings import Settings
from finance_pipeline.warehouse import WarehouseTarget, open_warehouse

log = logging.getLogger("finance_pipeline.dynamics365.publish")

DESTINATION = "dynamics365"
MAPPING = "bc-salesorder/1"  # part of every hash: a new mapping re-sends everything (as updates)
SALES_ACCOUNT, FREIGHT_ACCOUNT = "40100", "40250"
PAGE = 500
SCAN_ABOVE = 20  # more unknown keys than this: one paged listing instead of a $filter look-up each
CENT = Decimal("0.01")


class MappingError(ValueError):
    """A mart row Business Central cannot express; recorded failed and quarantined, the rest go on."""


def tax_code(treatment: str, rate: Decimal | None) -> str:
    """The BC tax group of a line (the company's tax groups; TAXABLE sales are the US desk's own)."""
    pct = Decimal(0) if rate is None else (rate * 100 if rate <= 1 else rate)
    if treatment == "uk_vat":
        code = {Decimal(20): "VAT20", Decimal(5): "VAT5", Decimal(0): "VAT0"}.get(pct)
        if code is None:
            raise MappingError(f"no Business Central tax group for UK VAT at {pct}%")
        return code
    codes = {"eu_reverse_charge": "REVCHG", "export_zero_rated": "EXPORT", "us_resale_exempt": "RESALE"}
    if treatment not in codes:
        raise MappingError(f"no Business Central tax group for the tax treatment {treatment!r}")
    return codes[treatment]


def customer_payload(inv: MartInvoice) -> dict:
    number = str(inv.customer_id or "")
    if not number or len(number) > 20:
        raise MappingError(f"customer id {number!r} is not a Business Central customer number (1-20 characters)")
    body = {"number": number, "displayName": ((inv.customer_name or "").strip() or f"Customer {number}")[:100]}
    if inv.customer_email:
        body["email"] = inv.customer_email[:80]
    return body


def order_lines(inv: MartInvoice, items: dict[str, str]) -> list[dict]:
    if not inv.lines:
        raise MappingError("the invoice has no lines")
    out = []
    for line in inv.lines:
        code = tax_code(inv.tax_treatment, line.tax_rate)
        text = " — ".join(p for p in (line.sku, line.description) if p) or line.kind
        body: dict[str, Any] = {"quantity": line.quantity, "unitPrice": line.unit_amount,
                                "discountAmount": line.discount_amount.quantize(CENT), "taxCode": code}
        if line.kind == "shipping":
            body.update(lineType="Account", lineObjectNumber=FREIGHT_ACCOUNT, description=(line.description or "Freight")[:100])
        elif line.sku and line.sku in items:
            body.update(lineType="Item", itemId=items[line.sku], description=(line.description or line.sku)[:100])
        else:
            body.update(lineType="Account", lineObjectNumber=SALES_ACCOUNT, description=text[:100])
        out.append(body)
    return out


def order_payload(inv: MartInvoice, items: dict[str, str]) -> dict:
    if len(inv.invoice_number) > 35:
        raise MappingError(f"invoice number {inv.invoice_number!r} is longer than externalDocumentNumber's 35")
    return {"externalDocumentNumber": inv.invoice_number, "orderDate": inv.issued_on.isoformat(),
            "customerNumber": customer_payload(inv)["number"], "currencyCode": inv.currency,
            "salesOrderLines": order_lines(inv, items)}


def _d(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(str(value))


def order_is_current(remote: dict, want: dict) -> bool:
    """Does BC hold the order we would send (header and lines)?"""
    if (remote.get("orderDate") != want["orderDate"] or remote.get("customerNumber") != want["customerNumber"]
            or (remote.get("currencyCode") or "") != want["currencyCode"]):
        return False
    got, lines = remote.get("salesOrderLines") or [], want["salesOrderLines"]
    if len(got) != len(lines):
        return False
    for g, w in zip(sorted(got, key=lambda x: x.get("sequence", 0)), lines):
        if (g.get("lineType") != w["lineType"] or _d(g.get("quantity")) != _d(w["quantity"])
                or _d(g.get("unitPrice")) != _d(w["unitPrice"]) or _d(g.get("discountAmount")) != _d(w["discountAmount"])
                or g.get("taxCode") != w["taxCode"] or (g.get("description") or "") != w["description"]
                or ("itemId" in w and g.get("itemId") != w["itemId"])
                or ("lineObjectNumber" in w and g.get("lineObjectNumber") != w["lineObjectNumber"])):
            return False
    return True


def order_differences(remote: dict, inv: MartInvoice) -> list[Mismatch]:
    key = inv.invoice_number
    out = []
    for name, want in (("totalAmountExcludingTax", inv.subtotal_amount), ("totalTaxAmount", inv.tax_amount),
                       ("totalAmountIncludingTax", inv.total_amount)):
        if _d(remote.get(name)).quantize(CENT) != want.quantize(CENT):
            out.append(Mismatch(key, name, want, remote.get(name)))
    if remote.get("orderDate") != inv.issued_on.isoformat():
        out.append(Mismatch(key, "orderDate", inv.issued_on.isoformat(), remote.get("orderDate")))
    if (remote.get("currencyCode") or "") != inv.currency:
        out.append(Mismatch(key, "currencyCode", inv.currency, remote.get("currencyCode")))
    if len(remote.get("salesOrderLines") or []) != len(inv.lines):
        out.append(Mismatch(key, "lines", len(inv.lines), len(remote.get("salesOrderLines") or [])))
    return out


@dataclass(frozen=True)
class _Order:
    inv: MartInvoice
    payload: dict | None  # None: voided


class _Run:
    def __init__(self, client: ApiClient, ledger: PublishLedger, result: PublishResult) -> None:
        self.client = client
        self.ledger = ledger
        self.result = result
        self.rejected: list[tuple[str, str, Any, str]] = []
        self._items: dict[str, str] | None = None

    # -- reads --------------------------------------------------------------------------------------
    def items(self) -> dict[str, str]:
        if self._items is None:
            self._items = {i["number"]: i["id"] for i in self._list("items") if i.get("number")}
        return self._items

    def _list(self, path: str, flt: str | None = None, expand: str | None = None) -> list[dict]:
        params = {k: v for k, v in (("$filter", flt), ("$expand", expand)) if v}
        return [row for page in odata_pages(self.client, path, None, size=PAGE, params=params) for row in page]

    def find_customers(self, keys: list[str]) -> dict[str, dict]:
        found = {}
        for key in keys:
            for c in self._list("customers", f"number eq {quote(key)}"):
                found[key] = c
        return found

    def find_orders(self, keys: list[str]) -> dict[str, dict]:
        found = {}
        for key in keys:
            docs = self._list("salesOrders", f"externalDocumentNumber eq {quote(key)}", "salesOrderLines")
            if docs:
                found[key] = docs[0]
        return found

    def all_orders(self) -> dict[str, list[dict]]:
        out: dict[str, list[dict]] = {}
        for doc in self._list("salesOrders", None, "salesOrderLines"):
            out.setdefault(doc.get("externalDocumentNumber") or "", []).append(doc)
        return out

    # -- writes -------------------------------------------------------------------------------------
    def _refused(self, kind: str, write: Write, exc: bc.Refused) -> Outcome:
        message = f"{exc.code}: {exc.message}"
        self.rejected.append((f"dynamics365.{kind}", write.key, write.body, f"Business Central refused the {kind}: "
                                                                         f"{message}"))
        return Outcome(False, error=message)

    def _create_batch(self, kind: str, path: str, batch: list[Write]) -> list[Outcome]:
        """Creates as one `$batch` (each operation alone: BC's refusal of one leaves the others written).
        An operation answered 429/5xx has no definitive outcome: recorded failed without an id, so the
        next run looks its key up before posting it again."""
        outcomes = []
        for w, answer in zip(batch, bc.batch(self.client, [("POST", path, w.body) for w in batch])):
            refusal = answer.refusal()
            if refusal is not None:
                outcomes.append(self._refused(kind, w, refusal))
            elif 200 <= answer.status < 300 and isinstance(answer.body, dict) and answer.body.get("id"):
                outcomes.append(Outcome(True, str(answer.body["id"])))
            else:
                outcomes.append(Outcome(False, error=f"no definitive answer in the $batch (HTTP {answer.status}); "
                                                     "looked up before it is sent again"))
        return outcomes

    def _send_customer(self, batch: list[Write]) -> list[Outcome]:
        return self._create_batch("customer", "customers", batch)

    def _send_order_creates(self, batch: list[Write]) -> list[Outcome]:
        return self._create_batch("salesOrder", "salesOrders", batch)

    def _send_order(self, batch: list[Write]) -> list[Outcome]:
        out = []
        for w in batch:
            try:
                out.append(self._order_write(w))
            except bc.Refused as exc:
                out.append(self._refused("salesOrder", w, exc))
        return out

    def _order_write(self, w: Write) -> Outcome:
        """One order write; transport failures (5xx, timeouts after the client's retries) propagate and
        leave the key pending, to be looked up by its externalDocumentNumber on the next run."""
        if w.op == "create":
            return Outcome(True, str(bc.call(self.client, "POST", "salesOrders", json=w.body).json()["id"]))
        order = f"salesOrders({w.remote_id})"
        try:
            current = bc.call(self.client, "GET", order, params={"$expand": "salesOrderLines"}).json()
        except bc.Refused as exc:
            if exc.status == 404 and w.op == "void":
                return Outcome(True, w.remote_id)  # already gone
            raise
        if w.op == "void":
            bc.call(self.client, "DELETE", order, headers={"If-Match": current["@odata.etag"]}, expect_json=False)
            return Outcome(True, w.remote_id)
        head = {k: v for k, v in w.body.items() if k != "salesOrderLines"}
        bc.call(self.client, "PATCH", order, json=head, headers={"If-Match": current["@odata.etag"]})
        for line in current.get("salesOrderLines") or []:  # lines replaced: BC has no deep update
            bc.call(self.client, "DELETE", f"{order}/salesOrderLines({line['id']})",
                    headers={"If-Match": line["@odata.etag"]}, expect_json=False)
        for line in w.body["salesOrderLines"]:
            bc.call(self.client, "POST", f"{order}/salesOrderLines", json=line)
        return Outcome(True, w.remote_id)

    # -- the two object types --------------------------------------------------------------------------
    def _not_sent(self, kind: str, failures: list[tuple[str, str]]) -> None:
        counts = self.result.of(kind)
        self.ledger.mark_failed_many(kind, [(k, None, f"not sent: {e}", None) for k, e in failures])
        counts.failed += len(failures)
        for key, error in failures:
            self.result.errors.append(ItemError(kind, key, f"not sent: {error}"))
            self.rejected.append((f"dynamics365.{kind}", key, None, f"not sent: {error}"))

    def publish_customers(self, invoices: list[MartInvoice]) -> None:
        desired: dict[str, Desired] = {}
        bad: list[tuple[str, str]] = []
        for inv in invoices:
            if inv.voided or not inv.customer_id or str(inv.customer_id) in desired:
                continue
            try:
                body = customer_payload(inv)
            except MappingError as exc:
                bad.append((str(inv.customer_id), str(exc)))
                continue
            desired[body["number"]] = Desired(body["number"], content_hash({"v": MAPPING, "customer": body}), body)
        self._not_sent("customer", bad)
        counts = self.result.of("customer")
        # an existing BC customer is master data: found means done, whatever its name or email says
        resolve_unknown(self.ledger, "customer", desired, self.find_customers, remote_id_of=lambda c: str(c["id"]),
                        is_current=lambda remote, want: True, counts=counts, scan_above=SCAN_ABOVE,
                        find_all=lambda: {c["number"]: c for c in self._list("customers")})
        plan = self.ledger.plan("customer", [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged) + len(plan.changed)
        writes = [Write("create", k, desired[k].content_hash, None, desired[k].record) for k in plan.new]
        write_batches(self.ledger, "customer", writes, self._send_customer, counts=counts,
                      errors=self.result.errors, batch_size=bc.MAX_BATCH)

    def publish_orders(self, invoices: list[MartInvoice]) -> None:
        kind = "salesOrder"
        counts = self.result.of(kind)
        customers = {k for k, e in self.ledger.entries("customer").items() if e.status == "done"}
        desired: dict[str, Desired] = {}
        bad: list[tuple[str, str]] = []
        for inv in invoices:
            key = inv.invoice_number
            if inv.voided:
                desired[key] = Desired(key, content_hash({"v": MAPPING, "void": True}), _Order(inv, None))
                continue
            try:
                payload = order_payload(inv, self.items())
            except MappingError as exc:
                bad.append((key, str(exc)))
                continue
            if payload["customerNumber"] not in customers:
                bad.append((key, f"its customer {payload['customerNumber']} is not in Business Central (see the "
                                 "customer's error)"))
                continue
            desired[key] = Desired(key, content_hash({"v": MAPPING, "order": payload}), _Order(inv, payload))
        self._not_sent(kind, bad)

        def is_current(remote: dict, want: Desired) -> bool:
            return want.record.payload is not None and order_is_current(remote, want.record.payload)

        def find_all() -> dict[str, dict]:
            return {k: docs[0] for k, docs in self.all_orders().items() if k}

        resolve_unknown(self.ledger, kind, desired, self.find_orders, remote_id_of=lambda d: str(d["id"]),
                        is_current=is_current, counts=counts, find_all=find_all, scan_above=SCAN_ABOVE)
        plan = self.ledger.plan(kind, [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged)
        for entry in plan.unresolved:
            counts.unresolved += 1
            self.result.errors.append(ItemError(kind, entry.business_key, "still pending after look-up"))
        writes, never = [], []
        for key in plan.new:
            want = desired[key]
            if want.record.payload is None:
                never.append((key, want.content_hash, None))
            else:
                writes.append(Write("create", key, want.content_hash, None, want.record.payload))
        for entry in plan.changed:
            want = desired[entry.business_key]
            op = "void" if want.record.payload is None else "update"
            writes.append(Write(op, entry.business_key, want.content_hash, entry.remote_id, want.record.payload))
        self.ledger.mark_done_many(kind, never, detail="voided before it was ever published")
        counts.skipped += len(never)
        creates = [w for w in writes if w.op == "create"]
        changes = [w for w in writes if w.op != "create"]
        write_batches(self.ledger, kind, creates, self._send_order_creates, counts=counts,
                      errors=self.result.errors, batch_size=bc.MAX_BATCH)
        # an update or a void is several requests on one order (read its ETag, PATCH, lines replaced): one at a time
        write_batches(self.ledger, kind, changes, self._send_order, counts=counts, errors=self.result.errors,
                      batch_size=1)

    def read_back(self, invoices: list[MartInvoice]) -> None:
        held = self.all_orders()
        self.result.read_back = sum(len(v) for v in held.values())
        for inv in invoices:
            docs = held.get(inv.invoice_number, [])
            if inv.voided:
                if docs:
                    self.result.mismatches.append(Mismatch(inv.invoice_number, "presence", "deleted (voided)",
                                                           f"{len(docs)} open order(s)"))
                continue
            if not docs:
                self.result.mismatches.append(Mismatch(inv.invoice_number, "presence", "one sales order", "missing"))
                continue
            if len(docs) > 1:
                self.result.mismatches.append(Mismatch(inv.invoice_number, "duplicates", 1, len(docs)))
            self.result.mismatches.extend(order_differences(docs[0], inv))


def _dry_run(con: duckdb.DuckDBPyConnection, invoices: list[MartInvoice]) -> DryRun:
    plan = DryRun(DESTINATION)
    has_ledger = con.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'ops' "
                             "AND table_name = 'publish_ledger'").fetchone()[0]
    ledger = PublishLedger(con, DESTINATION)
    entries = {k: ledger.entries(k) if has_ledger else {} for k in ("customer", "salesOrder")}
    seen = set()
    for inv in invoices:
        entry = entries["salesOrder"].get(inv.invoice_number)
        if inv.voided:
            if entry is not None and entry.remote_id and entry.status == "done":
                plan.add("salesOrder", "DELETE (voided)", inv.invoice_number, None)
            continue
        try:
            customer = customer_payload(inv)
            payload = order_payload(inv, {})  # items are looked up at send time; SKUs shown as account lines
        except MappingError as exc:
            plan.add("salesOrder", "not sent", inv.invoice_number, None, reason=str(exc))
            continue
        if customer["number"] not in seen and customer["number"] not in entries["customer"]:
            plan.add("customer", "POST (if absent)", customer["number"], customer)
        seen.add(customer["number"])
        if entry is not None and entry.status == "done" and entry.remote_id:
            plan.add("salesOrder", "PATCH + lines (if changed)", inv.invoice_number, payload)
        elif entry is None or entry.status != "done":
            plan.add("salesOrder", "POST (after look-up)", inv.invoice_number, payload)
    return plan


def publish_sales_orders(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget, *,
                         dry_run: bool | None = None, client: ApiClient | None = None,
                         read_back: bool = True) -> PublishResult:
    """Publish customers and sales orders to Business Central; read back; compare."""
    started = time.monotonic()
    dry_run = settings.publish_dry_run if dry_run is None else dry_run
    con = open_warehouse(warehouse_path, read_only=dry_run)
    result = PublishResult(DESTINATION, "dry-run", primary="salesOrder")
    own = client is None
    run = None
    try:
        invoices = load_trade_invoices(con, exclude_channel=DESTINATION)
        if dry_run:
            plan = _dry_run(con, invoices)
            result.dry_run = {**plan.summary(), "saved_to": plan.save(settings)}
            return result
        ledger = PublishLedger(con, DESTINATION).ensure_schema()
        result.run_id = ledger.run_id
        for kind in ("customer", "salesOrder"):
            result.of(kind)
        client = client or bc.make_client(connection)
        run = _Run(client, ledger, result)
        run.publish_customers(invoices)
        run.publish_orders(invoices)
        if read_back:
            run.read_back(invoices)
    finally:
        if client is not None:
            result.requests = client.stats["requests"]
            if own:
                bc.close(client)
        con.close()
        result.seconds = time.monotonic() - started
    if run is not None and run.rejected:
        result.quarantined = quarantine_rejections(settings, DESTINATION, run.rejected)
    so, cu = result.of("salesOrder"), result.of("customer")
    log.info("dynamics365 publish: orders created %d, updated %d, deleted %d, unchanged %d, failed %d, unresolved %d, "
             "recovered %d; customers created %d; %d read back, %d mismatches, %d requests, %.1f s", so.created,
             so.updated, so.voided, so.unchanged, so.failed, so.unresolved, so.recovered, cu.created, result.read_back,
             len(result.mismatches), result.requests, result.seconds)
    return result


def check_read_back(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget) -> PublishResult:
    """Only the read-back."""
    result = PublishResult(DESTINATION, "read-back", primary="salesOrder")
    con = open_warehouse(warehouse_path, read_only=True)
    client = bc.make_client(connection)
    try:
        _Run(client, PublishLedger(con, DESTINATION), result).read_back(
            load_trade_invoices(con, exclude_channel=DESTINATION))
    finally:
        bc.close(client)
        con.close()
    return result


def main(argv: list[str] | None = None) -> int:
    from finance_pipeline.publish.destinations import run_cli

    return run_cli(DESTINATION, publish_sales_orders, argv,
                   "Publish the other channels' trade invoices to Business Central as sales orders.")


if __name__ == "__main__":
    import sys

    sys.exit(main())

