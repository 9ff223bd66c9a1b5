"""QuickBooks `POST /batch`: up to 30 items each answered on its own (`bId`), a refused item leaves
nothing behind and the rest are saved, a replayed `requestid` writes nothing again, 31 items are
refused whole; the publisher's batches and its one-POST-per-entity path leave the same company."""
from __future__ import annotations

from decimal import Decimal

import pytest

from finance_pipeline.platforms.quickbooks.client import QboFault, batch, make_client, write
from finance_pipeline.platforms.quickbooks.publish import publish_to_quickbooks
from quickbooks_fixtures import qbo_env  # noqa: F401
from xero_fixtures import build_marts, build_payments


def _invoice(customer: str, number: str, amount: str = "100.00", code: str = "2") -> dict:
    return {"CustomerRef": {"value": customer}, "DocNumber": number, "TxnDate": "2025-11-03",
            "Line": [{"DetailType": "SalesItemLineDetail", "Amount": Decimal(amount),
                      "SalesItemLineDetail": {"ItemRef": {"value": "11"}, "Qty": 1, "UnitPrice": Decimal(amount),
                                              "TaxCodeRef": {"value": code}}}]}


def test_batch_items_answer_on_their_own_and_replay(qbo_env):
    client = make_client(qbo_env.connection())
    cust = write(client, "Customer", {"DisplayName": "Batch Buyer (C1)"}, "c1")
    items = [{"bId": "a", "operation": "create", "Invoice": _invoice(cust["Id"], "B-1")},
             {"bId": "b", "operation": "create", "Invoice": _invoice(cust["Id"], "B-2", code="99")},  # unknown code
             {"bId": "c", "operation": "create", "Invoice": _invoice(cust["Id"], "B-3", "250.00")}]
    answers = batch(client, items, "batch-1")
    assert set(answers) == {"a", "b", "c"}
    assert answers["a"]["Invoice"]["TotalAmt"] == Decimal("120.00") and answers["c"]["Invoice"]["DocNumber"] == "B-3"
    assert answers["b"]["Fault"]["Error"][0]["code"] == "2500"
    assert sorted(d["DocNumber"] for d in qbo_env.emulator.docs("Invoice")) == ["B-1", "B-3"]
    again = batch(client, items, "batch-1")  # a retried request replays the first answer
    assert again == answers and len(qbo_env.emulator.docs("Invoice")) == 2
    # update with a stale SyncToken fails alone; delete and void in the same batch
    inv_a, inv_c = answers["a"]["Invoice"], answers["c"]["Invoice"]
    mixed = batch(client, [
        {"bId": "1", "operation": "update", "Invoice": {**_invoice(cust["Id"], "B-1", "80.00"), "Id": inv_a["Id"],
                                                         "SyncToken": "7"}},
        {"bId": "2", "operation": "void", "Invoice": {"Id": inv_c["Id"], "SyncToken": inv_c["SyncToken"]}},
    ], "batch-2")
    assert mixed["1"]["Fault"]["Error"][0]["code"] == "5010" and mixed["2"]["Invoice"]["TotalAmt"] == Decimal("0.00")
    with pytest.raises(ValueError):  # the client never sends more than 30
        batch(client, [{"bId": str(n), "Invoice": _invoice(cust["Id"], f"X-{n}")} for n in range(31)], "batch-3")
    with pytest.raises(QboFault) as refused:  # and the emulator refuses the whole batch, as QBO does
        _post_raw(client, 31, cust["Id"])
    assert "2010" in refused.value.codes and len(qbo_env.emulator.docs("Invoice")) == 2
    client.close()


def _post_raw(client, n: int, customer: str):  # noqa: ANN001, ANN202 - past the client's own guard
    resp = client.request("POST", "batch", params={"minorversion": 75, "requestid": "batch-3"},
                          json={"BatchItemRequest": [{"bId": str(i), "Invoice": _invoice(customer, f"X-{i}")}
                                                     for i in range(n)]}, idempotent=True, ok_statuses=(400,))
    fault = resp.json()["Fault"]
    raise QboFault(fault["Error"], fault["type"])


def test_batched_and_single_publishing_leave_the_same_company(qbo_env, tmp_path):
    made = build_marts(qbo_env.warehouse, n_invoices=70)
    build_payments(qbo_env.warehouse)
    conn = qbo_env.connection()
    first = publish_to_quickbooks(qbo_env.settings, conn, qbo_env.warehouse, batch_size=30)
    assert first.ok and first.mismatches == [], first.summary()
    created = first.of("invoice").created
    assert created == made["invoices"] - made["voided"]
    # the same marts once more, one POST per entity: nothing to write, and everything reads back equal
    again = publish_to_quickbooks(qbo_env.settings, conn, qbo_env.warehouse, batch_size=1)
    assert again.ok and again.of("invoice").created == 0 and again.mismatches == []
    stats = qbo_env.emulator.stats()
    assert stats["batch_items"] >= created and stats["invoices"] == created
    assert first.requests < created  # 30 writes a request
