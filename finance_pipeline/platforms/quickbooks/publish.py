"""Trade invoices, their customers and the card payments against them, from the marts to QuickBooks Online.

Reads `marts.fct_invoices` / `fct_invoice_lines` / `fct_payments` (through `finance_pipeline.publish.marts`)
and writes, with the shared ledger protocol (`finance_pipeline.publish.mechanics`):
- one Customer per trade customer: DisplayName `<name> (<customer id>)` (QBO wants unique display
  names; the id makes the name stable and lets a look-up find it), CompanyName, email, and the
  customer's currency (QBO fixes a customer's currency; an invoice must be in it);
- one Invoice per mart invoice: DocNumber = invoice number, TxnDate / DueDate, currency, one
  SalesItemLineDetail line per mart line (Qty x UnitPrice = Amount, item `Trade goods` or `Shipping`,
  the VAT code of the line's treatment and rate), the discounts as one DiscountLineDetail line, and
  the mart's tax per VAT code in TxnTaxDetail so QBO's totals equal the marts' to the cent; a voided
  mart invoice is voided (`operation=void`) if it exists, not posted if it never did;
- one Payment per card payment applied to an invoice (PaymentRefNum = the processor id's last 21
  characters, the full id in PrivateNote), deposited to the Stripe clearing account; a payment that
  no longer applies (refunded in full) is deleted.

Every write carries `minorversion` and a `requestid` derived from what is sent (retries reuse it, a
different body or SyncToken gets another); updates send the current SyncToken (re-read just
before), and a stale-token answer (5010) is retried once with a fresh one.  Writes go 30 at a time
through `POST /batch` (`batch_size`; 1 = one POST per entity): each item is answered on its own,
so a refused record fails alone and the rest of its batch is saved; the batch carries one
`requestid` derived from all its items.

Run alone (the kill -9 test does): `python -m finance_pipeline.platforms.quickbooks.publish --data-dir DIR`.
"""
from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any, Callable, Iterable

from finance_pipeline.http import ApiClient
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.quickbooks.client import (
    BATCH_LIMIT, QboFault, batch, make_client, query, query_pages, quote, write,
)
from finance_pipeline.platforms.quickbooks.wire import money, to_decimal
from finance_pipeline.publish.destinations import DryRun, quarantine_rejections
from finance_pipeline.publish.ledger import PublishLedger, content_hash
from finance_pipeline.publish.marts import (
    MartInvoice, MartLine, MartPayment, load_invoice_payments, load_trade_invoices,
)
from finance_pipeline.publish.mechanics import (
    Desired, ItemError, Mismatch, Outcome, PublishResult, Write, batched, resolve_unknown, write_batches,
)
from finance_pipeline.settings import Settings
from finance_pipeline.warehouse import WarehouseTarget, open_warehouse

log = logging.getLogger("finance_pipeline.quickbooks.publish")

DESTINATION = "quickbooks"
CUSTOMER_MAPPING = "qbo-customer/1"
INVOICE_MAPPING = "qbo-invoice/1"
PAYMENT_MAPPING = "qbo-payment/1"
ITEM_NAMES = {"sales_trade": "Trade goods", "shipping_income": "Shipping"}
CLEARING_ACCOUNT = {"stripe": "37"}  # DepositToAccountRef per processor; others to Undeposited Funds (36)
LOOKUP_BATCH = 40
SCAN_ABOVE = 120


class MappingError(ValueError):
    """A mart row QBO's mapping cannot express; recorded failed, the rest go on."""


def tax_code_name(treatment: str, rate: Decimal | None) -> str:
    """UK VAT codes of a UK QBO company: standard / reduced / zero by the line's rate; EU reverse
    charge as EC goods; exports and US resale-exempt sales zero-rated."""
    if treatment == "eu_reverse_charge":
        return "0.0% ECG"
    if treatment != "uk_vat":
        return "0.0% Z"
    if rate is None:
        return "20.0% S"
    pct = rate * 100 if rate <= 1 else rate  # a fraction (0.2) or a percentage (20)
    if pct == 0:
        return "0.0% Z"
    if pct == 5:
        return "5.0% R"
    return "20.0% S"


def display_name(inv: MartInvoice) -> str:
    name = (inv.customer_name or "").strip() or "Customer"
    return f"{name} ({inv.customer_id})"


def request_id(kind: str, *parts: str | None) -> str:
    digest = hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()
    return f"{kind}-{digest[:44]}"  # ≤ 50 characters, as Intuit allows


class _Refs:
    """Item and tax-code ids of the company, looked up by name once per run."""

    def __init__(self, client: ApiClient) -> None:
        self.items = {i["Name"]: i["Id"] for i in query(client, "SELECT * FROM Item MAXRESULTS 1000").get("Item", [])}
        self.tax_codes = {t["Name"]: t["Id"] for t in
                          query(client, "SELECT * FROM TaxCode MAXRESULTS 1000").get("TaxCode", [])}

    def item(self, account_kind: str) -> str:
        name = ITEM_NAMES.get(account_kind)
        if name is None or name not in self.items:
            raise MappingError(f"account_kind {account_kind!r} has no QuickBooks item "
                               f"(expected one of {sorted(ITEM_NAMES)} mapped to an existing item)")
        return self.items[name]

    def tax_code(self, treatment: str, rate: Decimal | None) -> str:
        name = tax_code_name(treatment, rate)
        if name not in self.tax_codes:
            raise MappingError(f"the company has no tax code {name!r}")
        return self.tax_codes[name]


def _line_amount(line: MartLine) -> Decimal:
    return money(line.quantity * line.unit_amount)


def invoice_payload(inv: MartInvoice, refs: _Refs) -> dict:
    """The invoice as posted, minus CustomerRef (its Id is only known at send time)."""
    missing = [n for n in ("customer_id", "issued_on", "due_on", "currency") if not getattr(inv, n)]
    if missing:
        raise MappingError(f"the mart row has no {', '.join(missing)}")
    if not inv.lines:
        raise MappingError("the invoice has no lines")
    lines: list[dict] = []
    discount = Decimal("0.00")
    tax_by_code: dict[str, Decimal] = defaultdict(Decimal)
    base_by_code: dict[str, Decimal] = defaultdict(Decimal)
    for line in inv.lines:
        code = refs.tax_code(inv.tax_treatment, line.tax_rate)
        lines.append({"DetailType": "SalesItemLineDetail", "Amount": _line_amount(line),
                      "Description": line.description or line.sku or line.kind,
                      "SalesItemLineDetail": {"ItemRef": {"value": refs.item(line.account_kind)},
                                              "Qty": line.quantity, "UnitPrice": line.unit_amount,
                                              "TaxCodeRef": {"value": code}}})
        discount += money(line.discount_amount)
        tax_by_code[code] += money(line.tax_amount)
        base_by_code[code] += money(line.line_amount)
    if discount:
        lines.append({"DetailType": "DiscountLineDetail", "Amount": discount, "Description": "Trade discount",
                      "DiscountLineDetail": {"PercentBased": False, "DiscountAccountRef": {"value": "3"}}})
    tax_lines = [{"Amount": amount, "DetailType": "TaxLineDetail",
                  "TaxLineDetail": {"TaxRateRef": {"value": f"1{code}"}, "PercentBased": True,
                                    "NetAmountTaxable": base_by_code[code]}}
                 for code, amount in sorted(tax_by_code.items())]
    return {"DocNumber": inv.invoice_number, "TxnDate": inv.issued_on.isoformat(), "DueDate": inv.due_on.isoformat(),
            "CurrencyRef": {"value": inv.currency}, "GlobalTaxCalculation": "TaxExcluded",
            "PrivateNote": f"Order {inv.order_number or ''}".strip(),
            "Line": lines, "TxnTaxDetail": {"TotalTax": money(inv.tax_amount), "TaxLine": tax_lines}}


def customer_payload(inv: MartInvoice) -> dict:
    payload: dict[str, Any] = {"DisplayName": display_name(inv),
                               "CompanyName": (inv.customer_name or "").strip() or None,
                               "CurrencyRef": {"value": inv.currency}}
    if inv.customer_email:
        payload["PrimaryEmailAddr"] = {"Address": inv.customer_email}
    return {k: v for k, v in payload.items() if v is not None}


def _is_voided(remote: dict) -> bool:
    return remote.get("PrivateNote") == "Voided" and money(remote.get("TotalAmt", 0)) == 0


def invoice_is_current(remote: dict, inv: MartInvoice, payload: dict | None) -> bool:
    if inv.voided:
        return _is_voided(remote)
    if payload is None or _is_voided(remote):
        return False
    if (remote.get("TxnDate") != payload["TxnDate"] or remote.get("DueDate") != payload["DueDate"]
            or (remote.get("CurrencyRef") or {}).get("value") != inv.currency
            or money(remote.get("TotalAmt", 0)) != money(inv.total_amount)
            or money((remote.get("TxnTaxDetail") or {}).get("TotalTax", 0)) != money(inv.tax_amount)
            or remote.get("PrivateNote") != payload["PrivateNote"]):
        return False
    got = [line for line in remote.get("Line", []) if line.get("DetailType") != "SubTotalLineDetail"]
    want = payload["Line"]
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if g.get("DetailType") != w["DetailType"] or money(g.get("Amount", 0)) != w["Amount"] \
                or g.get("Description") != w.get("Description"):
            return False
        if w["DetailType"] == "SalesItemLineDetail":
            gd, wd = g.get("SalesItemLineDetail") or {}, w["SalesItemLineDetail"]
            if (to_decimal(gd.get("Qty", 0)) != wd["Qty"] or to_decimal(gd.get("UnitPrice", 0)) != wd["UnitPrice"]
                    or (gd.get("ItemRef") or {}).get("value") != wd["ItemRef"]["value"]
                    or (gd.get("TaxCodeRef") or {}).get("value") != wd["TaxCodeRef"]["value"]):
                return False
    return True


class _QboRun:
    def __init__(self, client: ApiClient, ledger: PublishLedger, result: PublishResult,
                 dry_run: DryRun | None, batch_size: int = BATCH_LIMIT) -> None:
        self.client = client
        self.batch_size = max(1, min(batch_size, BATCH_LIMIT))
        self.ledger = ledger
        self.result = result
        self.dry = dry_run
        self.refs = _Refs(client)
        self.customer_ids: dict[str, str] = {}
        self.invoice_ids: dict[str, str] = {}
        self.rejected: list[tuple[str, str, Any, str]] = []  # (entity, key, body, QBO's message)

    # -- shared --------------------------------------------------------------------------------------
    def _fetch_current(self, entity: str, ids: Iterable[str]) -> dict[str, dict]:
        """The current documents (SyncToken!) of these Ids, 100 per query."""
        out: dict[str, dict] = {}
        for chunk in batched(sorted(set(ids), key=int), 100):
            rows = query(self.client, f"SELECT * FROM {entity} WHERE Id IN ({', '.join(quote(i) for i in chunk)}) "
                                      f"MAXRESULTS 1000").get(entity, [])
            out.update({r["Id"]: r for r in rows})
        return out

    def _send_one(self, entity: str, make_body: Callable[[dict | None], dict], write_: Write,
                  operation: str | None = None) -> Outcome:
        """POST one write; an update gets the current SyncToken, and one retry if it went stale."""
        for attempt in (1, 2):
            current = None
            if write_.remote_id:
                current = self._fetch_current(entity, [write_.remote_id]).get(write_.remote_id)
                if current is None:
                    return Outcome(False, error=f"{entity} {write_.remote_id} no longer exists in QuickBooks")
            body = make_body(current)
            rid = request_id(f"{entity[:3].lower()}{(operation or write_.op)[0]}", write_.key, write_.content_hash,
                             write_.remote_id, current.get("SyncToken") if current else None, operation)
            try:
                saved = write(self.client, entity, body, rid, operation)
            except QboFault as exc:
                if "5010" in exc.codes and attempt == 1:
                    continue
                self.rejected.append((entity, write_.key, body, exc.message))
                return Outcome(False, error=exc.message)
            return Outcome(True, saved.get("Id") if isinstance(saved, dict) else write_.remote_id)
        return Outcome(False, error="SyncToken kept changing")  # pragma: no cover - two stale answers in a row

    def _send_many(self, entity: str, writes: list[Write], make_body: Callable[[Write, dict | None], dict],
                   operation_of: Callable[[Write], str | None]) -> list[Outcome]:
        """Several writes in one `POST /batch` (≤ 30): the current SyncTokens of the updates read in
        one query, each item answered on its own (its Fault is that record's rejection), items whose
        SyncToken went stale (5010) sent once more in a second batch.  The batch's `requestid` is
        derived from every item's key, content hash, Id and SyncToken, so a retried request replays."""
        if len(writes) == 1:
            (w,) = writes
            return [self._send_one(entity, lambda current: make_body(w, current), w, operation_of(w))]
        outcomes: dict[int, Outcome] = {}
        todo = list(range(len(writes)))
        for attempt in (1, 2):
            currents = self._fetch_current(entity, [writes[i].remote_id for i in todo if writes[i].remote_id])
            items, parts = [], []
            for i in todo:
                w = writes[i]
                current = currents.get(w.remote_id) if w.remote_id else None
                if w.remote_id and current is None:
                    outcomes[i] = Outcome(False, error=f"{entity} {w.remote_id} no longer exists in QuickBooks")
                    continue
                op = operation_of(w) or ("update" if current is not None else "create")
                items.append({"bId": str(i), "operation": op, entity: make_body(w, current)})
                parts += [w.key, w.content_hash, w.remote_id, current.get("SyncToken") if current else None, op]
            if not items:
                break
            answers = batch(self.client, items, request_id(f"{entity[:3].lower()}b", *parts))
            stale = []
            for item in items:
                i, w = int(item["bId"]), writes[int(item["bId"])]
                answer = answers.get(item["bId"])
                if answer is None:
                    outcomes[i] = Outcome(False, error="QuickBooks gave no answer for this batch item")
                elif "Fault" in answer:
                    problem = QboFault((answer["Fault"] or {}).get("Error") or [],
                                       (answer["Fault"] or {}).get("type") or "ValidationFault")
                    if "5010" in problem.codes and attempt == 1:
                        stale.append(i)
                        continue
                    self.rejected.append((entity, w.key, item[entity], problem.message))
                    outcomes[i] = Outcome(False, error=problem.message)
                else:
                    saved = answer.get(entity) or {}
                    outcomes[i] = Outcome(True, saved.get("Id") or w.remote_id)
            todo = stale
            if not todo:
                break
        for i in todo:
            outcomes.setdefault(i, Outcome(False, error="SyncToken kept changing"))
        return [outcomes[i] for i in range(len(writes))]

    def _write_all(self, object_type: str, writes: list[Write], send: Callable[[list[Write]], list[Outcome]]) -> None:
        counts = self.result.of(object_type)
        if self.dry is not None:
            for w in writes:
                self.dry.add(object_type, w.op, w.key, w.body, remote_id=w.remote_id)
            return
        write_batches(self.ledger, object_type, writes, send, counts=counts, errors=self.result.errors,
                      batch_size=self.batch_size)

    def _unresolved(self, object_type: str, entries: list) -> None:
        counts = self.result.of(object_type)
        for entry in entries:
            counts.unresolved += 1
            self.result.errors.append(ItemError(object_type, entry.business_key, "still pending after look-up"))

    def _fail_before_sending(self, object_type: str, rows: list[tuple[str, str | None, str, str | None]]) -> None:
        if self.dry is None:
            self.ledger.mark_failed_many(object_type, rows)
        self.result.of(object_type).failed += len(rows)
        self.result.errors.extend(ItemError(object_type, k, e) for k, _, e, _ in rows)

    # -- customers ------------------------------------------------------------------------------------
    def find_customers(self, keys: list[str]) -> dict[str, dict]:
        found = {}
        for key in keys:  # no OR in the query language: one LIKE per key
            rows = query(self.client, f"SELECT * FROM Customer WHERE DisplayName LIKE {quote('%(' + key + ')')}"
                         ).get("Customer", [])
            if rows:
                found[key] = rows[0]
        return found

    def all_customers(self) -> dict[str, dict]:
        found = {}
        for page in query_pages(self.client, "Customer"):
            for row in page:
                name = row.get("DisplayName", "")
                if name.endswith(")") and "(" in name:
                    found.setdefault(name[name.rindex("(") + 1:-1], row)
        return found

    def publish_customers(self, invoices: list[MartInvoice]) -> None:
        desired: dict[str, Desired[dict]] = {}
        first_currency: dict[str, str] = {}
        for inv in invoices:  # issued order: name and email from the latest invoice, the currency
            if not inv.voided and inv.customer_id:  # from the first (QBO never changes a customer's currency)
                payload = customer_payload(inv)
                payload["CurrencyRef"] = {"value": first_currency.setdefault(inv.customer_id, inv.currency)}
                desired[inv.customer_id] = Desired(inv.customer_id,
                                                   content_hash({"v": CUSTOMER_MAPPING, **payload}), payload)
        counts = self.result.of("customer")

        def is_current(remote: dict, want: Desired[dict]) -> bool:
            return (remote.get("DisplayName") == want.record["DisplayName"]
                    and (remote.get("PrimaryEmailAddr") or {}).get("Address")
                    == (want.record.get("PrimaryEmailAddr") or {}).get("Address"))

        resolve_unknown(self.ledger, "customer", desired, self.find_customers, remote_id_of=lambda r: r["Id"],
                        is_current=is_current, counts=counts, batch_size=LOOKUP_BATCH, find_all=self.all_customers,
                        scan_above=LOOKUP_BATCH // 2)
        plan = self.ledger.plan("customer", [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged)
        self._unresolved("customer", plan.unresolved)
        writes = [Write("create", k, desired[k].content_hash, None, desired[k].record) for k in plan.new]
        writes += [Write("update", e.business_key, desired[e.business_key].content_hash, e.remote_id,
                         desired[e.business_key].record) for e in plan.changed]

        def body(w: Write, current: dict | None) -> dict:
            if current is None:
                return w.body
            return {**w.body, "Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True}

        def send(writes_: list[Write]) -> list[Outcome]:
            return self._send_many("Customer", writes_, body, lambda w: None)

        self._write_all("customer", writes, send)
        self.customer_ids = {k: e.remote_id for k, e in self.ledger.entries("customer").items()
                             if e.remote_id and e.status != "pending"}
        if self.dry is not None:  # what a real run would have created by now
            self.customer_ids.update({w.key: w.remote_id or f"(new customer {w.key})" for w in writes})

    # -- invoices -------------------------------------------------------------------------------------
    def find_invoices(self, numbers: list[str]) -> dict[str, dict]:
        rows = query(self.client, f"SELECT * FROM Invoice WHERE DocNumber IN ({', '.join(quote(n) for n in numbers)}) "
                                  f"MAXRESULTS 1000").get("Invoice", [])
        return {r["DocNumber"]: r for r in rows if r.get("DocNumber") in numbers}

    def all_invoices(self) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for page in query_pages(self.client, "Invoice"):
            for row in page:
                if row.get("DocNumber"):
                    found.setdefault(row["DocNumber"], row)
        return found

    def publish_invoices(self, invoices: list[MartInvoice]) -> None:
        counts = self.result.of("invoice")
        desired: dict[str, Desired[tuple[MartInvoice, dict | None]]] = {}
        unmappable = []
        for inv in invoices:
            try:
                payload = None if inv.voided else invoice_payload(inv, self.refs)
            except MappingError as exc:
                unmappable.append((inv.invoice_number, None, f"not posted: {exc}", None))
                continue
            digest = content_hash({"v": INVOICE_MAPPING, "void": True}) if inv.voided else \
                content_hash({"v": INVOICE_MAPPING, "customer": inv.customer_id, "invoice": payload})
            desired[inv.invoice_number] = Desired(inv.invoice_number, digest, (inv, payload))
        self._fail_before_sending("invoice", unmappable)
        self.rejected.extend(("Invoice", k, None, e) for k, _, e, _ in unmappable)  # bad rows: quarantined too
        resolve_unknown(self.ledger, "invoice", desired, self.find_invoices, remote_id_of=lambda r: r["Id"],
                        is_current=lambda remote, want: invoice_is_current(remote, *want.record), counts=counts,
                        batch_size=LOOKUP_BATCH, find_all=self.all_invoices, scan_above=SCAN_ABOVE)
        plan = self.ledger.plan("invoice", [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged)
        self._unresolved("invoice", plan.unresolved)
        writes: list[Write] = []
        never_posted, no_customer = [], []
        for key, remote_id in [(k, None) for k in plan.new] + [(e.business_key, e.remote_id) for e in plan.changed]:
            want = desired[key]
            inv, payload = want.record
            if inv.voided:
                if remote_id is None:
                    never_posted.append((key, want.content_hash, None))
                else:
                    writes.append(Write("void", key, want.content_hash, remote_id, None))
                continue
            customer = self.customer_ids.get(inv.customer_id or "")
            if customer is None:
                no_customer.append((key, want.content_hash, f"customer {inv.customer_id} has no QuickBooks customer "
                                    "(see the customer's error); invoice not posted", remote_id))
                continue
            body = {"CustomerRef": {"value": customer}, **(payload or {})}
            writes.append(Write("create" if remote_id is None else "update", key, want.content_hash, remote_id, body))
        if self.dry is None:
            self.ledger.mark_done_many("invoice", never_posted, detail="voided before it was ever published")
        counts.skipped += len(never_posted)
        self._fail_before_sending("invoice", no_customer)

        def body(w: Write, current: dict | None) -> dict:
            if w.op == "void":
                return {"Id": current["Id"], "SyncToken": current["SyncToken"]}  # type: ignore[index]
            if current is None:
                return w.body
            return {**w.body, "Id": current["Id"], "SyncToken": current["SyncToken"]}

        def send(writes_: list[Write]) -> list[Outcome]:
            return self._send_many("Invoice", writes_, body, lambda w: "void" if w.op == "void" else None)

        self._write_all("invoice", writes, send)
        self.invoice_ids = {k: e.remote_id for k, e in self.ledger.entries("invoice").items()
                            if e.remote_id and e.status != "pending"}
        if self.dry is not None:
            self.invoice_ids.update({w.key: w.remote_id or f"(new invoice {w.key})" for w in writes if w.op != "void"})

    # -- payments -------------------------------------------------------------------------------------
    @staticmethod
    def ref_num(payment_id: str) -> str:
        return payment_id[-21:]

    def find_payments(self, keys: list[str]) -> dict[str, dict]:
        refs = {self.ref_num(k): k for k in keys}
        rows = query(self.client, f"SELECT * FROM Payment WHERE PaymentRefNum IN ({', '.join(quote(r) for r in refs)}) "
                                  f"MAXRESULTS 1000").get("Payment", [])
        found = {}
        for row in rows:
            key = refs.get(row.get("PaymentRefNum", ""))
            if key and key in (row.get("PrivateNote") or ""):
                found[key] = row
        return found

    def publish_payments(self, invoices: list[MartInvoice], payments: list[MartPayment]) -> None:
        counts = self.result.of("payment")
        by_number = {inv.invoice_number: inv for inv in invoices}
        desired: dict[str, Desired[dict]] = {}
        waiting = 0
        for p in payments:
            inv = by_number[p.invoice_number]
            invoice_id = self.invoice_ids.get(p.invoice_number)
            customer_id = self.customer_ids.get(inv.customer_id or "")
            if invoice_id is None or customer_id is None:
                waiting += 1  # its invoice is not in QBO (failed, pending): next run
                continue
            body = {"CustomerRef": {"value": customer_id}, "TotalAmt": money(p.amount), "TxnDate": p.paid_on.isoformat(),
                    "PaymentRefNum": self.ref_num(p.payment_id), "PrivateNote": f"{p.channel} {p.payment_id}",
                    "DepositToAccountRef": {"value": CLEARING_ACCOUNT.get(p.channel, "36")},
                    "Line": [{"Amount": money(p.amount), "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}]}
            desired[p.payment_id] = Desired(p.payment_id, content_hash({"v": PAYMENT_MAPPING, **body}), body)
        if waiting:
            log.info("quickbooks: %d payments wait for their invoice", waiting)

        def is_current(remote: dict, want: Desired[dict]) -> bool:
            lines = remote.get("Line") or []
            return (money(remote.get("TotalAmt", 0)) == want.record["TotalAmt"]
                    and remote.get("TxnDate") == want.record["TxnDate"] and len(lines) == 1
                    and lines[0]["LinkedTxn"][0]["TxnId"] == want.record["Line"][0]["LinkedTxn"][0]["TxnId"]
                    and money(lines[0]["Amount"]) == want.record["Line"][0]["Amount"])

        resolve_unknown(self.ledger, "payment", desired, self.find_payments, remote_id_of=lambda r: r["Id"],
                        is_current=is_current, counts=counts, batch_size=LOOKUP_BATCH)
        plan = self.ledger.plan("payment", [(k, d.content_hash) for k, d in desired.items()])
        counts.unchanged += len(plan.unchanged)
        self._unresolved("payment", plan.unresolved)
        writes = [Write("create", k, desired[k].content_hash, None, desired[k].record) for k in plan.new]
        writes += [Write("update", e.business_key, desired[e.business_key].content_hash, e.remote_id,
                         desired[e.business_key].record) for e in plan.changed]
        # payments we wrote that no longer apply (refunded in full, invoice voided): deleted
        gone = content_hash({"v": PAYMENT_MAPPING, "deleted": True})
        for key, entry in self.ledger.entries("payment").items():
            if key not in desired and entry.remote_id and entry.status == "done" and entry.content_hash != gone:
                writes.append(Write("void", key, gone, entry.remote_id, None))

        def body(w: Write, current: dict | None) -> dict:
            if w.op == "void":
                return {"Id": current["Id"], "SyncToken": current["SyncToken"]}  # type: ignore[index]
            if current is None:
                return w.body
            return {**w.body, "Id": current["Id"], "SyncToken": current["SyncToken"]}

        def send(writes_: list[Write]) -> list[Outcome]:
            return self._send_many("Payment", writes_, body, lambda w: "delete" if w.op == "void" else None)

        self._write_all("payment", writes, send)

    # -- read-back ------------------------------------------------------------------------------------
    def read_back(self, invoices: list[MartInvoice], payments: list[MartPayment]) -> None:
        remote: dict[str, dict] = {}
        for page in query_pages(self.client, "Invoice"):
            for row in page:
                remote[row["Id"]] = row  # by Id: a row repeated across pages counts once
        self.result.read_back = len(remote)
        self.result.mismatches = compare_with_marts(invoices, payments, remote.values(),
                                                    {e.remote_id for e in self.ledger.entries("invoice").values()
                                                     if e.remote_id})


def compare_with_marts(invoices: Iterable[MartInvoice], payments: list[MartPayment], remote: Iterable[dict],
                       managed_ids: set[str]) -> list[Mismatch]:
    """Every mart invoice once, with the mart's totals and, as payments are applied, its balance."""
    applied: dict[str, Decimal] = defaultdict(Decimal)
    for p in payments:
        applied[p.invoice_number] += p.amount
    by_number: dict[str, list[dict]] = defaultdict(list)
    for r in remote:
        by_number[r.get("DocNumber") or ""].append(r)
    out: list[Mismatch] = []
    for inv in invoices:
        n = inv.invoice_number
        found = by_number.pop(n, [])
        if len(found) > 1:
            out.append(Mismatch(n, "count", 1, len(found)))
        if not found:
            if not inv.voided:
                out.append(Mismatch(n, "presence", "in QuickBooks", "missing"))
            continue
        r = found[0]
        if inv.voided:
            if not _is_voided(r):
                out.append(Mismatch(n, "status", "Voided", r.get("PrivateNote")))
            continue
        for field, expected, actual in (
                ("TotalAmt", money(inv.total_amount), r.get("TotalAmt")),
                ("TotalTax", money(inv.tax_amount), (r.get("TxnTaxDetail") or {}).get("TotalTax")),
                ("Balance", money(inv.total_amount - applied[n]), r.get("Balance")),
                ("CurrencyRef", inv.currency, (r.get("CurrencyRef") or {}).get("value")),
                ("DueDate", inv.due_on.isoformat(), r.get("DueDate"))):
            if actual is None or (money(actual) if isinstance(expected, Decimal) else actual) != expected:
                out.append(Mismatch(n, field, expected, actual))
    for number, rows in by_number.items():
        for r in rows:
            if r.get("Id") in managed_ids and not _is_voided(r):
                out.append(Mismatch(number, "presence", "not in the marts", r.get("Id")))
    return out


def publish_to_quickbooks(settings: Settings, connection: Connection, warehouse_path: WarehouseTarget, *,
                          client: ApiClient | None = None, dry_run: bool = False,
                          batch_size: int = BATCH_LIMIT) -> PublishResult:
    """Publish customers, trade invoices and their payments to QuickBooks Online; read back; compare.

    Safe to re-run at any time and after any crash (see the module docstring).  In dry-run mode
    nothing is written anywhere; `result.dry_run` says what would have been sent.
    """
    started = time.monotonic()
    own_client = client is None
    con = open_warehouse(warehouse_path)
    ledger = PublishLedger(con, DESTINATION).ensure_schema()
    result = PublishResult(DESTINATION, ledger.run_id, primary="invoice")
    for object_type in ("customer", "invoice", "payment"):
        result.of(object_type)
    dry = DryRun(DESTINATION) if dry_run else None
    run = None
    try:
        invoices = load_trade_invoices(con, exclude_channel="quickbooks")  # never the trade counter's own
        payments = load_invoice_payments(con, invoices)
        client = client or make_client(connection)
        run = _QboRun(client, ledger, result, dry, batch_size)
        run.publish_customers(invoices)
        run.publish_invoices(invoices)
        run.publish_payments(invoices, payments)
        if dry is None:
            run.read_back(invoices, payments)
    finally:
        if client is not None:
            result.requests = client.stats["requests"]
            if own_client:
                client.close()
                auth = getattr(client, "auth", None)
                if auth is not None and hasattr(auth, "close"):
                    auth.close()
        con.close()
    if dry is not None:
        result.dry_run = dry.summary()
        result.dry_run["plan_file"] = dry.save(settings)
    elif run is not None and run.rejected:
        result.quarantined = quarantine_rejections(settings, DESTINATION, run.rejected)
    result.seconds = time.monotonic() - started
    inv, pay = result.of("invoice"), result.of("payment")
    log.info("quickbooks publish: invoices created %d, updated %d, voided %d, unchanged %d, failed %d, unresolved %d, "
             "recovered %d; payments written %d; %d read back, %d mismatches, %d requests, %.1f s",
             inv.created, inv.updated, inv.voided, inv.unchanged, inv.failed, inv.unresolved, inv.recovered,
             pay.written, result.read_back, len(result.mismatches), result.requests, result.seconds)
    return result


def main(argv: list[str] | None = None) -> int:
    from finance_pipeline.publish.destinations import run_cli

    return run_cli(DESTINATION, publish_to_quickbooks, argv,
                   "Publish trade invoices, customers and payments from the marts to QuickBooks Online.")


if __name__ == "__main__":
    sys.exit(main())
