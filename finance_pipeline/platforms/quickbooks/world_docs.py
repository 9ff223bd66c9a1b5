"""The trade counter's own QuickBooks documents (world tables `quickbooks_*`) as QBO entities, as of
the sandbox clock, for the emulator's store (`QboStore.sync_world`).

- Customers, Invoices, SalesReceipts and Payments exist once created (world time = `CreateTime`).
- An invoice shows the lines it had by the clock (a line added in an edit appears then), its
  `Balance` net of the payments recorded by then and those payments in `LinkedTxn`.
- Voided: as QBO voids (amounts zero, Qty and UnitPrice kept, `PrivateNote` "Voided").
- Deleted: status `Deleted` — gone from `/query` and reads, a tombstone in `/cdc`.

`LastUpdatedTime` is the world's own time of the document's latest change by the clock (raised,
edited, a payment recorded against it, voided, deleted), as the bookkeeper's save would have
stamped it; `SyncToken` is the store's business: it bumps it when the rendering of a document
changes (see `QboStore.sync_world`).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterator

from finance_pipeline.platforms.quickbooks import reference as ref

ZERO = Decimal("0.00")
TAX_CODE_OF_RATE = {Decimal("20"): "2", Decimal("5"): "4", Decimal("0"): "6"}
GOODS_ITEM, SHIPPING_ITEM = ref.ITEMS["11"], ref.ITEMS["12"]
BANK_ACCOUNT = ref.ACCOUNTS["35"]


def _fetch(cur, sql: str, params: list) -> list[dict]:
    cur = cur.execute(sql, params)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def _currency(code: str) -> dict:
    return {"value": code, "name": ref.ENABLED_CURRENCIES.get(code, code)}


def render(cur, clock: datetime) -> Iterator[tuple[str, dict, str, int, int]]:
    """(entity, doc, status, created epoch ms, last changed epoch ms) of every world document that
    exists by `clock`."""
    for c in _fetch(cur, "select * from quickbooks_customers where created_at <= ? order by qbo_id", [clock]):
        yield "Customer", {
            "Id": str(c["qbo_id"]), "DisplayName": c["display_name"], "CompanyName": c["company"],
            "PrintOnCheckName": c["company"], "PrimaryEmailAddr": {"Address": c["email"]},
            "BillAddr": {"Country": c["country"]}, "CurrencyRef": _currency(c["currency"]),
            "Active": True, "Taxable": True, "domain": "QBO", "sparse": False,
        }, "Active", _ms(c["created_at"]), _ms(c["created_at"])
    docs = _fetch(cur, "select * from quickbooks_documents where created_at <= ? order by qbo_id", [clock])
    lines: dict[int, list[dict]] = defaultdict(list)
    for line in _fetch(cur, """select l.* from quickbooks_lines l join quickbooks_documents d using (qbo_id)
                               where d.created_at <= ? and (l.added_at is null or l.added_at <= ?)
                               order by l.qbo_id, l.line_num""", [clock, clock]):
        lines[line["qbo_id"]].append(line)
    payments: dict[int, list[dict]] = defaultdict(list)
    for p in _fetch(cur, "select * from quickbooks_payments where created_at <= ? order by qbo_id", [clock]):
        payments[p["invoice_qbo_id"]].append(p)
    for d in docs:
        deleted = d["deleted_at"] is not None and d["deleted_at"] <= clock
        voided = d["voided_at"] is not None and d["voided_at"] <= clock
        doc = _sale(d, lines[d["qbo_id"]], payments[d["qbo_id"]], voided)
        changed = max([d["created_at"], *(p["created_at"] for p in payments[d["qbo_id"]]),
                       *(d[k] for k in ("edited_at", "voided_at", "deleted_at") if d[k] is not None and d[k] <= clock)])
        yield (d["entity"], doc, "Deleted" if deleted else ("Voided" if voided else "Active"), _ms(d["created_at"]),
               _ms(changed))
        for p in payments[d["qbo_id"]]:
            yield "Payment", _payment(p, d), "Active", _ms(p["created_at"]), _ms(p["created_at"])


def _sale(d: dict, lines: list[dict], payments: list[dict], voided: bool) -> dict:
    code = TAX_CODE_OF_RATE.get((d["tax_rate"] * 100).normalize(), "2")
    out: list[dict[str, Any]] = []
    subtotal, tax = ZERO, ZERO
    items = [(f"{line['sku']} · {line['title']}", GOODS_ITEM, line["qty"], line["unit_price"], line["amount"],
              line["tax_amount"]) for line in lines]
    if d["shipping"] > 0:
        items.append(("Delivery", SHIPPING_ITEM, 1, d["shipping"], d["shipping"], d["shipping_tax"]))
    for n, (description, item, qty, price, amount, line_tax) in enumerate(items, 1):
        out.append({"Id": str(n), "LineNum": n, "Description": description,
                    "Amount": ZERO if voided else amount, "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item.id, "name": item.name}, "Qty": qty,
                                            "UnitPrice": price, "TaxCodeRef": {"value": code}}})
        subtotal += amount
        tax += line_tax
    if voided:
        subtotal = tax = ZERO
    out.append({"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    total = subtotal + tax
    rate = d["exchange_rate"]
    doc: dict[str, Any] = {
        "Id": str(d["qbo_id"]), "DocNumber": d["doc_number"], "TxnDate": d["txn_date"].isoformat(),
        "CustomerRef": {"value": str(d["customer_qbo_id"]), "name": d["display_name"]},
        "CurrencyRef": _currency(d["currency"]), "ExchangeRate": rate,
        "BillEmail": {"Address": d["email"]}, "BillAddr": {"Country": d["country"]},
        "CustomerMemo": {"value": d["po_number"]}, "GlobalTaxCalculation": "TaxExcluded", "Line": out,
        "TxnTaxDetail": {"TotalTax": tax, "TaxLine": [] if voided else [
            {"Amount": tax, "DetailType": "TaxLineDetail",
             "TaxLineDetail": {"TaxRateRef": {"value": f"1{code}"}, "PercentBased": True,
                               "TaxPercent": ref.TAX_CODES[code].rate, "NetAmountTaxable": subtotal}}]},
        "TotalAmt": total, "HomeTotalAmt": (total * rate).quantize(Decimal("0.01")),
        "domain": "QBO", "sparse": False,
    }
    if voided:
        doc["PrivateNote"] = "Voided"
        doc["_status"] = "Voided"
    if d["entity"] == "SalesReceipt":
        doc.update({"PaymentRefNum": d["payment_ref"], "Balance": ZERO,
                    "DepositToAccountRef": {"value": BANK_ACCOUNT.id, "name": BANK_ACCOUNT.name},
                    "PaymentMethodRef": {"value": "3", "name": "Bank transfer"}})
        return doc
    paid = sum((p["amount"] for p in payments), ZERO)
    doc.update({"DueDate": d["due_date"].isoformat(), "SalesTermRef": {"value": str(d["terms_days"])},
                "Balance": ZERO if voided else total - paid,
                "LinkedTxn": [{"TxnId": str(p["qbo_id"]), "TxnType": "Payment", "_applied": p["amount"]}
                              for p in payments]})
    doc["HomeBalance"] = (doc["Balance"] * rate).quantize(Decimal("0.01"))
    return doc


def _payment(p: dict, d: dict) -> dict:
    return {
        "Id": str(p["qbo_id"]), "TxnDate": p["txn_date"].isoformat(),
        "CustomerRef": {"value": str(p["customer_qbo_id"]), "name": d["display_name"]},
        "CurrencyRef": _currency(p["currency"]), "ExchangeRate": p["exchange_rate"],
        "TotalAmt": p["amount"], "UnappliedAmt": ZERO, "PaymentRefNum": p["reference"][:21],
        "DepositToAccountRef": {"value": BANK_ACCOUNT.id, "name": BANK_ACCOUNT.name},
        "PaymentMethodRef": {"value": "3", "name": "Bank transfer"},
        "Line": [{"Amount": p["amount"], "LinkedTxn": [{"TxnId": str(d["qbo_id"]), "TxnType": "Invoice"}],
                  "_links": [{"TxnId": str(d["qbo_id"]), "Amount": p["amount"]}]}],
        "domain": "QBO", "sparse": False,
    }
