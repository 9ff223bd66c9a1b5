"""Trade invoices of the other channels to Sage Intacct as Order Entry Sales Invoices, crash-safe.

Reads `marts.fct_invoices` + `fct_invoice_lines` through `publish.marts.load_trade_invoices(con,
exclude_channel="sage_intacct")` (the division's own invoices are already in Intacct) and writes:
- `customer`  `create_customer` (CUSTOMERID = the mart's customer id, name, currency, email) when
              `readByQuery CUSTOMER` does not find it; customers are never updated from here;
- `invoice`   `create_sotransaction` (transactiontype 'Sales Invoice', `documentno` = the invoice
              number, `referenceno` = the order number, legacy structured `datecreated` / `datedue`,
              currency, exchratetype, one `sotransitem` per mart line — item = SKU, FREIGHT for
              shipping, DISCOUNT for a line's discount — with the mart's tax in `taxentries`);
              a changed mart invoice → `update_sotransaction key="Sales Invoice-<no>"`; one voided in
              the marts after it was published → `delete_sotransaction` (a posted invoice with no
              payment applied can be deleted; Intacct has no void for OE documents).
Every request carries `uniqueid=true` and a `controlid` derived from its writes (keys, content
hashes), so a request replayed after a lost answer is refused by the gateway instead of running
twice.  The shared ledger protocol does the rest: keys left pending by a crash (or never recorded)
are looked up first by document number (`readByQuery SODOCUMENT DOCNO IN (…)`) — found and equal →
done without a write, found and different → updated in place; a function the gateway refuses
(`<result><status>failure` with its `errorno`) is recorded failed and quarantined with Intacct's
message while the others in the request go on.  Read-back lists every published Sales Invoice and
compares totals, dates and currency with the marts.

Run it alone: `python -m finance_pipeline.platforms.sage_intacct.publish --data-dir DIR [--dry-run]`.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable
from xml.etree import ElementTree as ET

import duckdb

from finance_pipeline.http.client import ApiError
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.sage_intacct import client as si_client
from finance_pipeline.platforms.sage_intacct import wire
from finance_pipeline.platforms.sage_intacct.wire import DOCPARID, sub
from finance_pipeline.publish.destinations import DryRun, quarantine_rejections
from finance_pipeline.publish.ledger import PublishLedger, content_hash
from finance_pipeline.publish.marts import MartInvoice, load_trade_invoices
from finance_pipeline.publish.mechanics import (
    Desired, ItemError, Mismatch, Outcome, PublishResult, Write, idempotency_key, resolve_unknown, write_batches,
)
from finance_pipeline.settings import Settings
from finance_pipeline.warehouse import WarehouseTarget, open_warehouse

log = logging.getLogger("finance_pipeline.sage_intacct.publish")

DESTINATION = "sage_intacct"
MAPPING = "sage-intacct-trade/1"  # part of every hash: a new mapping re-sends everything (as updates)
BATCH = 25  # functions per request
LOOKUP_BATCH = 50
EXCHRATE_TYPE = "Intacct Daily Rate"
PUBLISHED_QUERY = f"DOCPARID = '{DOCPARID}' AND DOCNO NOT LIKE 'SI-%'"
VOID_HASH = "voided"
CENT = Decimal("0.01")
TAX_DETAILS = {  # tax treatment -> the company's tax detail id (Taxes > Tax details)
    "uk_vat": "UK Sale Goods Standard Rate", "export_zero_rated": "UK Sale Goods Zero Rated",
    "eu_reverse_charge": "UK Sale Goods Reverse Charge", "eu_oss_vat": "EU OSS Sale Goods",
    "us_sales_tax": "US Sales Tax", "us_resale_exempt": "US Resale Exempt", "au_gst": "AU GST Sale Goods",
}


class MappingError(ValueError):
    """A mart row Intacct cannot express; recorded failed and quarantined, the rest go on."""


# -- mapping ------------------------------------------------------------------------------------------
def customer_payload(inv: MartInvoice) -> dict:
    return {"customerid": str(inv.customer_id), "name": (inv.customer_name or "").strip() or f"Customer {inv.customer_id}",
            "currency": inv.currency, "email": inv.customer_email or ""}


def invoice_payload(inv: MartInvoice) -> dict:
    """The invoice as sent (plain data; `function_xml` renders it)."""
    if not inv.customer_id:
        raise MappingError("the mart row has no customer_id")
    if not inv.lines:
        raise MappingError("the invoice has no lines")
    detail = TAX_DETAILS.get(inv.tax_treatment)
    if detail is None:
        raise MappingError(f"no Intacct tax detail for the tax treatment {inv.tax_treatment!r}")
    items = []
    for line in inv.lines:
        itemid = "FREIGHT" if line.kind == "shipping" else (line.sku or "TRADE-GOODS")
        memo = " — ".join(p for p in (line.sku, line.description) if p) or line.kind
        gross = line.line_amount + line.discount_amount
        qty, price = line.quantity, line.unit_amount
        # Intacct rounds quantity x price to cents itself (half up); unless that product is already in
        # whole cents, send one unit at the line's gross so its rounding cannot move the total a cent
        if qty * price != gross:
            qty, price = Decimal(1), gross
        items.append({"itemid": itemid, "quantity": qty, "price": price, "memo": memo[:1000],
                      "tax": line.tax_amount.quantize(CENT)})
        if line.discount_amount:
            items.append({"itemid": "DISCOUNT", "quantity": Decimal(1), "price": -line.discount_amount,
                          "memo": f"Discount on {memo}"[:1000], "tax": Decimal("0.00")})
    return {"documentno": inv.invoice_number, "customerid": str(inv.customer_id), "referenceno": inv.order_number or "",
            "datecreated": inv.issued_on, "datedue": inv.due_on, "currency": inv.currency,
            "message": f"Trade order {inv.order_number or ''} ({inv.channel or 'marts'})", "taxdetail": detail,
            "items": items}


def function_xml(op: str, key: str, body: Any) -> ET.Element:
    if op == "void":
        return wire.function(key, ET.Element("delete_sotransaction", {"key": f"{DOCPARID}-{key}"}))
    if "customerid" in body and "items" not in body:
        el = ET.Element("create_customer")
        sub(el, "customerid", body["customerid"])
        sub(el, "name", body["name"])
        sub(el, "currency", body["currency"])
        if body["email"]:
            sub(sub(sub(el, "contactinfo"), "contact"), "email1", body["email"])
        return wire.function(key, el)
    el = ET.Element("create_sotransaction" if op == "create" else "update_sotransaction")
    if op == "create":
        sub(el, "transactiontype", DOCPARID)
    else:
        el.set("key", f"{DOCPARID}-{body['documentno']}")
    wire.legacy_date(el, "datecreated", body["datecreated"])
    sub(el, "customerid", body["customerid"])
    if op == "create":
        sub(el, "documentno", body["documentno"])
    sub(el, "referenceno", body["referenceno"])
    wire.legacy_date(el, "datedue", body["datedue"])
    sub(el, "message", body["message"])
    sub(el, "currency", body["currency"])
    sub(el, "exchratetype", EXCHRATE_TYPE)
    items = sub(el, "sotransitems" if op == "create" else "updatesotransitems")
    for item in body["items"]:
        it = sub(items, "sotransitem")
        sub(it, "itemid", item["itemid"])
        sub(it, "quantity", item["quantity"])
        sub(it, "price", item["price"])
        sub(it, "memo", item["memo"])
        entry = sub(sub(it, "taxentries"), "taxentry")
        sub(entry, "detailid", body["taxdetail"])
        sub(entry, "trx_tax", item["tax"])
    return wire.function(key, el)


def _d(text: str | None) -> Decimal:
    return Decimal(text) if text else Decimal(0)


def invoice_differences(remote: dict, inv: MartInvoice) -> list[Mismatch]:
    key, out = inv.invoice_number, []
    for name, want in (("TRX_TOTAL", inv.total_amount), ("TRX_SUBTOTAL", inv.subtotal_amount)):
        if _d(remote.get(name)).quantize(CENT) != want.quantize(CENT):
            out.append(Mismatch(key, name, want, remote.get(name)))
    for name, want in (("WHENCREATED", wire.idate(inv.issued_on)), ("WHENDUE", wire.idate(inv.due_on)),
                       ("CURRENCY", inv.currency), ("CUSTVENDID", str(inv.customer_id))):
        if (remote.get(name) or "") != want:
            out.append(Mismatch(key, name, want, remote.get(name)))
    return out


def invoice_is_current(remote: dict, want: Desired) -> bool:
    inv, body = want.record
    return not invoice_differences(remote, inv) and (remote.get("PONUMBER") or "") == body["referenceno"]


# -- one run ------------------------------------------------------------------------------------------------
@dataclass
class _Run:
    session: si_client.IntacctSession
    ledger: PublishLedger
    result: PublishResult

    def __post_init__(self) -> None:
        self.rejected: list[tuple[str, str, Any, str]] = []

    def find(self, obj: str, field: str, keys: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for start in range(0, len(keys), LOOKUP_BATCH):
            chunk = keys[start:start + LOOKUP_BATCH]
            query = f"{field} IN ({', '.join(wire.quote(k) for k in chunk)})"
            if obj == "SODOCUMENT":
                query = f"DOCPARID = '{DOCPARID}' AND {query}"
            for page in self.session.query(obj, query):
                found.update({row[field]: row for row in page})
        return found

    def published(self) -> dict[str, dict]:
        return {row["DOCNO"]: row for page in self.session.query("SODOCUMENT", PUBLISHED_QUERY) for row in page}

    def send(self, object_type: str) -> Callable[[list[Write]], list[Outcome]]:
        def send(batch: list[Write]) -> list[Outcome]:
            controlid = idempotency_key(f"si-{object_type}", [(w.op, w.key, w.content_hash) for w in batch])
            try:
                results = self.session.call([function_xml(w.op, w.key, w.body) for w in batch], read=False,
                                            controlid=controlid, uniqueid=True)
            except si_client.IntacctError as exc:
                if exc.errorno == "XL03000009":  # this very request ran before: its outcome is unknown
                    raise ApiError(DESTINATION, "POST", wire.PATH, None, "", str(exc)) from exc
                raise
            by_control = {r.controlid: r for r in results}
            outcomes = []
            for w in batch:
                r = by_control.get(w.key)
                if r is None:
                    outcomes.append(Outcome(False, error="no result for this function in the answer"))
                elif r.ok:
                    key = (r.data.findtext("sotransaction/key") if r.data is not None else None) \
                        or (f"{DOCPARID}-{w.key}" if object_type == "invoice" else w.key)
                    outcomes.append(Outcome(True, w.remote_id if w.op == "void" else key))
                else:
                    message = f"Intacct refused the {object_type}: {r.message()}"
                    outcomes.append(Outcome(False, error=message))
                    self.rejected.append((f"sage_intacct.{object_type}", w.key, w.body, message))
            return outcomes
        return send

    def publish_customers(self, invoices: list[MartInvoice]) -> set[str]:
        counts = self.result.of("customer")
        desired: dict[str, Desired] = {}
        for inv in invoices:
            if inv.voided or not inv.customer_id or str(inv.customer_id) in desired:
                continue
            body = customer_payload(inv)
            desired[body["customerid"]] = Desired(body["customerid"], content_hash({"v": MAPPING, "c": body}), body)
        resolve_unknown(self.ledger, "customer", desired, lambda keys: self.find("CUSTOMER", "CUSTOMERID", keys),
                        remote_id_of=lambda r: r["CUSTOMERID"], is_current=lambda r, w: True, counts=counts,
                        batch_size=LOOKUP_BATCH)
        plan = self.ledger.plan("customer", [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged)
        # customers are created when missing, never updated from here: a changed name is only recorded
        self.ledger.mark_done_many("customer", [(e.business_key, desired[e.business_key].content_hash, e.remote_id)
                                                for e in plan.changed], detail="kept as Intacct holds it")
        counts.unchanged += len(plan.changed)
        writes = [Write("create", k, desired[k].content_hash, None, desired[k].record) for k in plan.new]
        write_batches(self.ledger, "customer", writes, self.send("customer"), counts=counts,
                      errors=self.result.errors, batch_size=BATCH)
        return {k for k, e in self.ledger.entries("customer").items() if e.status == "done"}

    def publish_invoices(self, invoices: list[MartInvoice], customers: set[str]) -> None:
        counts = self.result.of("invoice")
        desired: dict[str, Desired] = {}
        unmappable = []
        for inv in invoices:
            if inv.voided:
                continue
            try:
                body = invoice_payload(inv)
            except MappingError as exc:
                unmappable.append((inv.invoice_number, None, f"not sent: {exc}", None))
                self.rejected.append(("sage_intacct.invoice", inv.invoice_number, inv.invoice_number, f"not sent: {exc}"))
                continue
            desired[inv.invoice_number] = Desired(inv.invoice_number, content_hash({"v": MAPPING, "body": body}),
                                                  (inv, body))
        self.ledger.mark_failed_many("invoice", unmappable)
        counts.failed += len(unmappable)
        self.result.errors.extend(ItemError("invoice", k, e) for k, _, e, _ in unmappable)
        resolve_unknown(self.ledger, "invoice", desired, lambda keys: self.find("SODOCUMENT", "DOCNO", keys),
                        remote_id_of=lambda r: r.get("DOCID") or f"{DOCPARID}-{r['DOCNO']}",
                        is_current=invoice_is_current, counts=counts, batch_size=LOOKUP_BATCH,
                        find_all=self.published)
        plan = self.ledger.plan("invoice", [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged)
        for entry in plan.unresolved:
            counts.unresolved += 1
            self.result.errors.append(ItemError("invoice", entry.business_key, "still pending after look-up"))
        writes, blocked = [], []
        for op, key, remote_id in ([("create", k, None) for k in plan.new]
                                   + [("update", e.business_key, e.remote_id) for e in plan.changed]):
            want = desired[key]
            if want.record[1]["customerid"] not in customers:
                blocked.append((key, want.content_hash, "its customer is not in Intacct (see the customer's error); "
                                                        "not sent", remote_id))
                continue
            writes.append(Write(op, key, want.content_hash, remote_id, want.record[1]))
        # voided in the marts after it was published: delete it (a key never published needs nothing)
        entries = self.ledger.entries("invoice")
        for inv in invoices:
            entry = entries.get(inv.invoice_number)
            if inv.voided and entry is not None and entry.remote_id and entry.content_hash != VOID_HASH:
                writes.append(Write("void", inv.invoice_number, VOID_HASH, entry.remote_id, None))
        self.ledger.mark_failed_many("invoice", blocked)
        counts.failed += len(blocked)
        self.result.errors.extend(ItemError("invoice", k, e) for k, _, e, _ in blocked)
        write_batches(self.ledger, "invoice", writes, self.send("invoice"), counts=counts,
                      errors=self.result.errors, batch_size=BATCH)

    def read_back(self, invoices: list[MartInvoice]) -> None:
        remote = self.published()
        self.result.read_back = len(remote)
        failed = {k for k, e in self.ledger.entries("invoice").items() if e.status == "failed"}
        live = {inv.invoice_number: inv for inv in invoices if not inv.voided}
        for number, inv in live.items():
            doc = remote.get(number)
            if doc is None:
                if number not in failed:  # refused ones are reported as errors and quarantined
                    self.result.mismatches.append(Mismatch(number, "presence", "in Intacct", "missing"))
                continue
            self.result.mismatches.extend(invoice_differences(doc, inv))
        for number in remote.keys() - live.keys():
            self.result.mismatches.append(Mismatch(number, "presence", "absent (voided or unknown)", "in Intacct"))


def _dry_run(con: duckdb.DuckDBPyConnection, invoices: list[MartInvoice]) -> DryRun:
    plan = DryRun(DESTINATION)
    has_ledger = con.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'ops' "
                             "AND table_name = 'publish_ledger'").fetchone()[0]
    ledger = PublishLedger(con, DESTINATION)
    customers = ledger.entries("customer") if has_ledger else {}
    entries = ledger.entries("invoice") if has_ledger else {}
    seen: set[str] = set()
    for inv in invoices:
        entry = entries.get(inv.invoice_number)
        if inv.voided:
            if entry is not None and entry.remote_id and entry.content_hash != VOID_HASH:
                plan.add("invoice", "delete_sotransaction", inv.invoice_number)
            continue
        cust = customer_payload(inv) if inv.customer_id else None
        if cust and cust["customerid"] not in seen and cust["customerid"] not in customers:
            seen.add(cust["customerid"])
            plan.add("customer", "create_customer (if readByQuery does not find it)", cust["customerid"], cust)
        try:
            body = invoice_payload(inv)
        except MappingError as exc:
            plan.add("invoice", "not sent", inv.invoice_number, None, reason=str(exc))
            continue
        digest = content_hash({"v": MAPPING, "body": body})
        if entry is not None and entry.status == "done" and entry.content_hash == digest:
            continue
        op = "update_sotransaction" if entry is not None and entry.remote_id else "create_sotransaction"
        plan.add("invoice", op, inv.invoice_number, body)
    return plan


def publish_trade_invoices(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget, *,
                           dry_run: bool | None = None, read_back: bool = True) -> PublishResult:
    """Publish customers and Sales Invoices to Sage Intacct; read back; compare."""
    started = time.monotonic()
    dry_run = settings.publish_dry_run if dry_run is None else dry_run
    con = open_warehouse(warehouse_path, read_only=dry_run)
    result = PublishResult(DESTINATION, "dry-run", primary="invoice")
    session = None
    run = None
    try:
        invoices = load_trade_invoices(con, exclude_channel=DESTINATION)
        if dry_run:
            plan = _dry_run(con, invoices)
            result.dry_run = {**plan.summary(), "saved_to": plan.save(settings)}
            return result
        ledger = PublishLedger(con, DESTINATION).ensure_schema()
        result.run_id = ledger.run_id
        for kind in ("customer", "invoice"):
            result.of(kind)
        session = si_client.make_client(connection)
        run = _Run(session, ledger, result)
        customers = run.publish_customers(invoices)
        run.publish_invoices(invoices, customers)
        if read_back:
            run.read_back(invoices)
    finally:
        if session is not None:
            result.requests = session.stats["requests"]
            session.close()
        con.close()
        result.seconds = time.monotonic() - started
    if run is not None and run.rejected:
        result.quarantined = quarantine_rejections(settings, DESTINATION, run.rejected)
    inv, cu = result.of("invoice"), result.of("customer")
    log.info("sage_intacct publish: invoices created %d, updated %d, deleted %d, unchanged %d, failed %d, "
             "unresolved %d, recovered %d; customers created %d; %d read back, %d mismatches, %d requests, %.1f s",
             inv.created, inv.updated, inv.voided, inv.unchanged, inv.failed, inv.unresolved, inv.recovered,
             cu.created, result.read_back, len(result.mismatches), result.requests, result.seconds)
    return result


def main(argv: list[str] | None = None) -> int:
    from finance_pipeline.publish.destinations import run_cli

    return run_cli(DESTINATION, publish_trade_invoices, argv, "Publish trade invoices to Sage Intacct.")


if __name__ == "__main__":
    import sys

    sys.exit(main())
