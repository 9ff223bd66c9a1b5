"""Trade invoices of the other channels, as sales orders in SAP Business One (Service Layer).

Reads `marts.fct_invoices` / `fct_invoice_lines` through `publish.marts.load_trade_invoices(con,
exclude_channel="sap_business_one")` — the desk's own B1 invoices are never written back — and writes,
with the shared ledger protocol (`finance_pipeline.publish.mechanics`):
- one business partner per trade customer (`POST BusinessPartners`, `CardCode` = the customer number,
  `CardType: cCustomer`, `Currency: "##"` = all currencies, so orders in any currency are accepted);
  a changed name or e-mail is patched (`PATCH BusinessPartners('C…')`);
- one sales order per mart invoice (`POST Orders`): `NumAtCard` (the customer reference) = our invoice
  number — B1 has no idempotency key, so this is the reference every look-up uses
  (`Orders?$filter=NumAtCard eq '…' or …`), and the company blocks duplicate customer references —
  `DocDate`, `DocDueDate`, `DocCurrency`, one line per mart line (`ItemCode` = the SKU, `FREIGHT` for
  shipping, `Quantity`, `UnitPrice`, `LineTotal` = the mart's net line amount, `VatGroup` by
  treatment and rate: O1 20 %, O2 5 %, O0 zero-rated UK, EC EU reverse charge, OX exports, OS outside
  the scope of UK VAT for US sales; US sales tax is one more line, item `US-SALES-TAX` at the tax amount,
  VAT group OS, posted to the US sales tax payable liability, `AccountCode` 2220, so B1's DocTotal
  is the marts' total and its VatSum 0);
- a changed invoice is patched in place (`PATCH Orders(DocEntry)` with the header and every line, and
  `B1S-ReplaceCollectionsOnPatch: true`, without which B1 merges lines by LineNum and keeps lines the
  body leaves out); a voided one is cancelled (`POST Orders(DocEntry)/Cancel`; never posted → nothing).

Writes go `BATCH_SIZE` at a time in one `POST $batch` (each document its own change set, so one
refusal never takes another document with it): one request and two ledger transactions per batch
instead of one request and two transactions per document.

Crash safety: a write is marked pending before it is sent; keys left pending (kill -9 between B1's
commit and the ledger update) are looked up by CardCode / NumAtCard before anything is posted again.
B1's refusals (`{"error":{"code","message":{"value"}}}`) are recorded failed and quarantined with B1's
message; the rest are published.  Read-back lists every order and compares it with the marts.

Run alone (the kill -9 test does): `python -m finance_pipeline.platforms.sap_business_one.publish --data-dir DIR`.
"""
from __future__ import annotations

import logging
import sys
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable, Iterable

from finance_pipeline.http import ApiClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.sap_business_one.client import (
    BATCH_SIZE, Op, OpResult, batch, error_message, make_client, pages, quote,
)
from finance_pipeline.publish.destinations import DryRun
from finance_pipeline.publish.ledger import PublishLedger, content_hash
from finance_pipeline.publish.marts import SALES_TAX_LINE_NAME, MartInvoice, MartLine, load_trade_invoices
from finance_pipeline.publish.mechanics import (
    Desired, ItemError, Mismatch, Outcome, PublishResult, Write, resolve_unknown, write_batches,
)
from finance_pipeline.publish.runner import compare_by_reference, run_publisher
from finance_pipeline.settings import Settings
from finance_pipeline.warehouse import WarehouseTarget

log = logging.getLogger("finance_pipeline.sap_business_one.publish")

DESTINATION = "sap_business_one"
PARTNER_MAPPING = "b1-partner/1"
ORDER_MAPPING = "b1-order/1"
LOCAL = "GBP"
FREIGHT_ITEM = "FREIGHT"
GOODS_ITEM = "TRADE-GOODS"  # a line without a SKU
SALES_TAX_ITEM = "US-SALES-TAX"  # a non-inventory item for the US sales tax line
SALES_TAX_ACCOUNT = "2220"  # US sales tax payable (liability), the GL seed's code
LOOKUP_BATCH = 20  # keys per `$filter=… or …` look-up
SCAN_ABOVE = 60
ORDER_FIELDS = "DocEntry,DocNum,NumAtCard,CardCode,DocDate,DocDueDate,DocCurrency,DocTotal,DocTotalFc,VatSum," \
               "VatSumFc,Cancelled,DocumentStatus,Comments,DocumentLines"
CENT = Decimal("0.01")


class MappingError(ValueError):
    """A mart row B1's mapping cannot express; recorded failed and quarantined, the rest go on."""


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT, rounding=ROUND_HALF_UP)


def vat_group(treatment: str | None, rate: Decimal | None) -> str:
    if treatment == "eu_reverse_charge":
        return "EC"
    if treatment in ("export_zero_rated", "us_resale_exempt"):
        return "OX"
    if treatment == "us_sales_tax":  # outside the scope of UK VAT; the tax itself is a liability line
        return "OS"
    if treatment != "uk_vat":
        raise MappingError(f"tax treatment {treatment!r} has no VAT group in this B1 company")
    pct = Decimal("20") if rate is None else (rate * 100 if rate <= 1 else rate)
    for at, group in ((20, "O1"), (5, "O2"), (0, "O0")):
        if pct == at:
            return group
    raise MappingError(f"UK VAT rate {pct}% has no VAT group")


def _line(line: MartLine, treatment: str) -> dict:
    item = FREIGHT_ITEM if line.kind == "shipping" else (line.sku or GOODS_ITEM)
    return {"ItemCode": item[:50], "ItemDescription": (line.description or item)[:100],
            "Quantity": line.quantity, "UnitPrice": line.unit_amount, "LineTotal": money(line.line_amount),
            "VatGroup": vat_group(treatment, line.tax_rate)}


def order_payload(inv: MartInvoice) -> dict:
    missing = [n for n in ("customer_id", "issued_on", "due_on", "currency") if not getattr(inv, n)]
    if missing:
        raise MappingError(f"the mart row has no {', '.join(missing)}")
    if not inv.lines:
        raise MappingError("the invoice has no lines")
    return {"CardCode": inv.customer_id, "DocDate": inv.issued_on.isoformat(), "DocDueDate": inv.due_on.isoformat(),
            "TaxDate": inv.issued_on.isoformat(), "NumAtCard": inv.invoice_number, "DocCurrency": inv.currency,
            "Comments": f"{inv.channel} order {inv.order_number or ''}".strip(),
            "DocumentLines": [_line(line, inv.tax_treatment) for line in inv.lines] + _sales_tax_lines(inv)}


def _sales_tax_lines(inv: MartInvoice) -> list[dict]:
    amount = money(inv.sales_tax_payable)
    if not amount:
        return []
    return [{"ItemCode": SALES_TAX_ITEM, "ItemDescription": SALES_TAX_LINE_NAME, "Quantity": Decimal(1),
             "UnitPrice": amount, "LineTotal": amount, "VatGroup": vat_group(inv.tax_treatment, None),
             "AccountCode": SALES_TAX_ACCOUNT}]


def partner_payload(inv: MartInvoice) -> dict:
    body = {"CardCode": inv.customer_id, "CardName": ((inv.customer_name or "").strip() or inv.customer_id)[:100],
            "CardType": "cCustomer", "Currency": "##"}
    if inv.customer_email:
        body["EmailAddress"] = inv.customer_email
    return body


def doc_amount(remote: dict, name: str) -> Decimal:
    """A document total in its own currency: B1 gives local (GBP) amounts and the `Fc` twins."""
    return money(remote.get(name) if remote.get("DocCurrency") == LOCAL else remote.get(f"{name}Fc"))


def order_is_current(remote: dict, inv: MartInvoice, payload: dict | None) -> bool:
    if inv.voided:
        return remote.get("Cancelled") == "tYES"
    if payload is None or remote.get("Cancelled") == "tYES":
        return False
    lines = remote.get("DocumentLines")
    if lines is not None and len(lines) != len(payload["DocumentLines"]):
        return False
    return (remote.get("CardCode") == payload["CardCode"] and remote.get("DocCurrency") == payload["DocCurrency"]
            and str(remote.get("DocDate"))[:10] == payload["DocDate"]
            and str(remote.get("DocDueDate"))[:10] == payload["DocDueDate"]
            and remote.get("Comments") == payload["Comments"]
            and doc_amount(remote, "DocTotal") == money(inv.total_amount)
            and doc_amount(remote, "VatSum") == money(inv.vat_amount))


class _B1Run:
    def __init__(self, client: ApiClient, ledger: PublishLedger, result: PublishResult, dry: DryRun | None) -> None:
        self.client, self.ledger, self.result, self.dry = client, ledger, result, dry
        self.partners: set[str] = set()
        self.rejected: list[tuple[str, str, Any, str]] = []  # (entity, key, body, B1's message)

    # -- plumbing -------------------------------------------------------------------------------------
    def _find(self, entity: str, field: str, keys: list[str], select: str) -> dict[str, dict]:
        where = " or ".join(f"{field} eq {quote(k)}" for k in keys)
        found: dict[str, dict] = {}
        for page in pages(self.client, entity, {"$filter": where, "$select": select}):
            for row in page:
                if row.get(field) in keys:
                    found.setdefault(row[field], row)
        return found

    def _all(self, entity: str, field: str, select: str) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for page in pages(self.client, entity, {"$select": select, "$orderby": "DocEntry"
                                                if entity == "Orders" else "CardCode"}):
            for row in page:
                if row.get(field):
                    found.setdefault(row[field], row)
        return found

    def _outcome(self, object_type: str, w: Write, answer: OpResult | None,
                 remote_id_of: Callable[[dict], str] | None) -> Outcome:
        """One operation's answer inside a batch reply, as the ledger sees it."""
        if answer is None:
            return Outcome(False, error="the $batch reply holds no answer for it", unresolved=True)
        if answer.status in (400, 404):  # B1 refused this document (nothing written for it)
            message = error_message(answer.body.decode("utf-8", "replace"))
            self.rejected.append((object_type, w.key, w.body, message))
            return Outcome(False, error=message)
        if not 200 <= answer.status < 300:
            return Outcome(False, error=f"HTTP {answer.status} inside the $batch reply", unresolved=True)
        body = answer.json()
        return Outcome(True, remote_id_of(body) if remote_id_of and isinstance(body, dict) else w.remote_id)

    def _write_all(self, object_type: str, writes: list[Write], op_of: Callable[[Write], Op],
                   remote_id_of: Callable[[Write, dict], str] | None = None) -> None:
        """Send `writes` BATCH_SIZE to a `$batch`, with the ledger's pending → done/failed protocol."""
        if self.dry is not None:
            for w in writes:
                self.dry.add(object_type, w.op, w.key, w.body, remote_id=w.remote_id)
            self.result.of(object_type)
            return

        def send(chunk: list[Write]) -> list[Outcome]:
            answers = batch(self.client, [op_of(w) for w in chunk])
            outcomes = [self._outcome(object_type, w, a, (lambda b, w=w: remote_id_of(w, b)) if remote_id_of else None)
                        for w, a in zip(chunk, answers)]
            return self._after_batch(object_type, chunk, outcomes)

        write_batches(self.ledger, object_type, writes, send, counts=self.result.of(object_type),
                      errors=self.result.errors, batch_size=BATCH_SIZE)

    def _after_batch(self, object_type: str, chunk: list[Write], outcomes: list[Outcome]) -> list[Outcome]:
        """A cancel refused because the order is already cancelled (an earlier answer was lost) is what
        we wanted: checked with one GET each (rare)."""
        out = []
        for w, outcome in zip(chunk, outcomes):
            if object_type == "order" and w.op == "void" and not outcome.ok and not outcome.unresolved:
                current = self.client.get_json(f"Orders({w.remote_id})", params={"$select": "DocEntry,Cancelled"})
                if current.get("Cancelled") == "tYES":
                    self.rejected = [r for r in self.rejected if not (r[0] == "order" and r[1] == w.key)]
                    outcome = Outcome(True, w.remote_id)
            out.append(outcome)
        return out

    def _plan(self, object_type: str, desired: dict[str, Desired]) -> tuple[list[str], list]:
        plan = self.ledger.plan(object_type, [(k, d.content_hash) for k, d in desired.items()])
        counts = self.result.of(object_type)
        counts.unchanged += len(plan.unchanged)
        for entry in plan.unresolved:
            counts.unresolved += 1
            self.result.errors.append(ItemError(object_type, entry.business_key, "still pending after look-up"))
        return plan.new, plan.changed

    def _fail(self, object_type: str, rows: list[tuple[str, str | None, str, str | None]], bodies: dict) -> None:
        if not rows:
            return
        if self.dry is None:
            self.ledger.mark_failed_many(object_type, rows)
        self.result.of(object_type).failed += len(rows)
        self.result.errors.extend(ItemError(object_type, k, e) for k, _, e, _ in rows)
        self.rejected.extend((object_type, k, bodies.get(k), e) for k, _, e, _ in rows)

    # -- business partners ----------------------------------------------------------------------------
    def publish_partners(self, invoices: list[MartInvoice]) -> None:
        desired: dict[str, Desired[dict]] = {}
        for inv in invoices:  # issued order: the latest invoice's name and e-mail win
            if not inv.voided and inv.customer_id:
                body = partner_payload(inv)
                desired[inv.customer_id] = Desired(inv.customer_id, content_hash({"v": PARTNER_MAPPING, **body}), body)
        select = "CardCode,CardName,EmailAddress,CardType"
        resolve_unknown(self.ledger, "partner", desired, lambda keys: self._find("BusinessPartners", "CardCode", keys, select),
                        remote_id_of=lambda r: r["CardCode"],
                        is_current=lambda r, want: (r.get("CardName") == want.record["CardName"]
                                                    and r.get("EmailAddress") == want.record.get("EmailAddress")),
                        counts=self.result.of("partner"), batch_size=LOOKUP_BATCH,
                        find_all=lambda: self._all("BusinessPartners", "CardCode", select), scan_above=SCAN_ABOVE)
        new, changed = self._plan("partner", desired)
        writes = [Write("create", k, desired[k].content_hash, None, desired[k].record) for k in new]
        writes += [Write("update", e.business_key, desired[e.business_key].content_hash, e.remote_id or e.business_key,
                         {k: v for k, v in desired[e.business_key].record.items() if k in ("CardName", "EmailAddress")})
                   for e in changed]

        def op(w: Write) -> Op:
            if w.op == "create":
                return Op("POST", "BusinessPartners", w.body)
            return Op("PATCH", f"BusinessPartners({quote(w.remote_id or w.key)})", w.body)

        self._write_all("partner", writes, op, remote_id_of=lambda w, b: b.get("CardCode") or w.key)
        self.partners = {k for k, e in self.ledger.entries("partner").items() if e.remote_id and e.status == "done"}
        if self.dry is not None:
            self.partners |= {w.key for w in writes}

    # -- sales orders ---------------------------------------------------------------------------------
    def publish_orders(self, invoices: list[MartInvoice]) -> None:
        desired: dict[str, Desired[tuple[MartInvoice, dict | None]]] = {}
        unmappable, bodies = [], {}
        for inv in invoices:
            try:
                payload = None if inv.voided else order_payload(inv)
            except MappingError as exc:
                unmappable.append((inv.invoice_number, None, f"not posted: {exc}", None))
                continue
            digest = content_hash({"v": ORDER_MAPPING, "void": True} if inv.voided else {"v": ORDER_MAPPING, **payload})
            desired[inv.invoice_number] = Desired(inv.invoice_number, digest, (inv, payload))
        self._fail("order", unmappable, bodies)
        resolve_unknown(self.ledger, "order", desired,
                        lambda keys: self._find("Orders", "NumAtCard", keys, ORDER_FIELDS),
                        remote_id_of=lambda r: str(r["DocEntry"]),
                        is_current=lambda remote, want: order_is_current(remote, *want.record),
                        counts=self.result.of("order"), batch_size=LOOKUP_BATCH,
                        find_all=lambda: self._all("Orders", "NumAtCard", ORDER_FIELDS), scan_above=SCAN_ABOVE)
        new, changed = self._plan("order", desired)
        writes: list[Write] = []
        never_posted, no_partner = [], []
        for key, remote_id in [(k, None) for k in new] + [(e.business_key, e.remote_id) for e in changed]:
            want = desired[key]
            inv, payload = want.record
            if inv.voided:
                if remote_id is None:
                    never_posted.append((key, want.content_hash, None))
                else:
                    writes.append(Write("void", key, want.content_hash, remote_id, None))
                continue
            if inv.customer_id not in self.partners:
                no_partner.append((key, want.content_hash, f"customer {inv.customer_id} has no business partner in "
                                   "SAP Business One (see the partner's error); order not posted", remote_id))
                bodies[key] = payload
                continue
            writes.append(Write("create" if remote_id is None else "update", key, want.content_hash, remote_id, payload))
        if self.dry is None:
            self.ledger.mark_done_many("order", never_posted, detail="voided before it was ever published")
        self.result.of("order").skipped += len(never_posted)
        self._fail("order", no_partner, bodies)

        def op(w: Write) -> Op:
            if w.op == "create":
                return Op("POST", "Orders", w.body)
            if w.op == "update":  # every line given: replace the collection, do not merge by LineNum
                return Op("PATCH", f"Orders({w.remote_id})", w.body, {"B1S-ReplaceCollectionsOnPatch": "true"})
            return Op("POST", f"Orders({w.remote_id})/Cancel")

        self._write_all("order", writes, op,
                        remote_id_of=lambda w, b: str(b["DocEntry"]) if w.op == "create" else w.remote_id)

    # -- read-back ------------------------------------------------------------------------------------
    def read_back(self, invoices: list[MartInvoice]) -> None:
        remote: dict[int, dict] = {}
        for page in pages(self.client, "Orders", {"$select": ORDER_FIELDS, "$orderby": "DocEntry"}):
            for row in page:
                remote[row["DocEntry"]] = row  # by key: a row repeated across pages counts once
        self.result.read_back = len(remote)
        managed = {e.remote_id for e in self.ledger.entries("order").values() if e.remote_id}
        self.result.mismatches = compare_with_marts(invoices, remote.values(), managed)


def _fields(inv: MartInvoice, r: dict) -> list[tuple[str, Any, Any]]:
    if inv.voided:
        return [("Cancelled", "tYES", r.get("Cancelled"))]
    return [("DocTotal", money(inv.total_amount), doc_amount(r, "DocTotal")),
            ("VatSum", money(inv.vat_amount), doc_amount(r, "VatSum")),
            ("DocCurrency", inv.currency, r.get("DocCurrency")), ("CardCode", inv.customer_id, r.get("CardCode")),
            ("DocDueDate", inv.due_on.isoformat(), str(r.get("DocDueDate"))[:10]),
            ("Cancelled", "tNO", r.get("Cancelled")), ("lines", len(inv.lines) + len(_sales_tax_lines(inv)), len(r.get("DocumentLines") or []))]


def compare_with_marts(invoices: Iterable[MartInvoice], remote: Iterable[dict], managed_ids: set[str]) -> list[Mismatch]:
    """Every mart invoice once as a sales order with the mart's totals; voided ones cancelled (or absent)."""
    return compare_by_reference(invoices, remote, reference=lambda r: r.get("NumAtCard"), fields=_fields,
                                remote_id=lambda r: str(r.get("DocEntry")),
                                is_void=lambda r: r.get("Cancelled") == "tYES", managed_ids=managed_ids,
                                title="SAP Business One")


def publish_orders(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget, *,
                   client: ApiClient | None = None, dry_run: bool = False) -> PublishResult:
    """Publish business partners and sales orders to SAP Business One; read back; compare.

    Safe to re-run at any time and after any crash; in dry-run mode nothing is written anywhere and
    `result.dry_run` says what would have been sent."""
    def work(con, client, ledger, result, dry) -> list:  # noqa: ANN001
        invoices = load_trade_invoices(con, exclude_channel=DESTINATION)
        run = _B1Run(client, ledger, result, dry)
        run.publish_partners(invoices)
        run.publish_orders(invoices)
        if dry is None:
            run.read_back(invoices)
        return run.rejected

    result = run_publisher(settings, DESTINATION, warehouse_path, primary="order", object_types=("partner", "order"),
                           dry_run=dry_run, client=client, make_client=lambda: make_client(connection), work=work)
    o = result.of("order")
    log.info("sap_business_one publish: orders created %d, updated %d, cancelled %d, unchanged %d, failed %d, "
             "unresolved %d, recovered %d; partners written %d; %d read back, %d mismatches, %d requests, %.1f s",
             o.created, o.updated, o.voided, o.unchanged, o.failed, o.unresolved, o.recovered,
             result.of("partner").written, result.read_back, len(result.mismatches), result.requests, result.seconds)
    return result


def main(argv: list[str] | None = None) -> int:
    from finance_pipeline.publish.destinations import run_cli

    return run_cli(DESTINATION, publish_orders, argv,
                   "Publish the other channels' trade invoices to SAP Business One as sales orders.")


if __name__ == "__main__":
    sys.exit(main())
