"""SAP Business One `$batch`: the emulator routes every operation of a batch exactly as it would route it
alone (same validation, same errors), answers each change set by Content-ID, keeps a change set all or
nothing, stops at the first failure unless asked to continue; the publisher's batched writes quarantine
the one refused document while the rest land, and a re-run writes nothing."""
from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from conftest import make_settings
from finance_pipeline.http.client import dumps
from finance_pipeline.platforms.sap_business_one import batch as multipart
from finance_pipeline.platforms.sap_business_one.client import Op, batch, make_client
from finance_pipeline.platforms.sap_business_one.publish import publish_orders
from sap_business_one_fixtures import assert_b1_matches_marts, b1_connection, start_b1
from xero_fixtures import build_marts

LINE = {"ItemCode": "LINEN-140", "Quantity": 2, "UnitPrice": Decimal("49.50"), "VatGroup": "O1"}


def _order(ref: str, **over) -> dict:
    return {"CardCode": "C-B1", "DocDate": "2025-03-03", "DocDueDate": "2025-04-02", "DocCurrency": "GBP",
            "NumAtCard": ref, "DocumentLines": [LINE], **over}


@pytest.fixture
def b1(tmp_path, small_world_dir):
    import shutil

    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    settings = make_settings(tmp_path)
    running = start_b1(settings)
    client = make_client(b1_connection(running, settings))
    yield settings, running, client
    client.close()
    running.stop()


def test_batch_creates_in_order_with_one_answer_per_operation(b1):
    _, running, client = b1
    answers = batch(client, [Op("POST", "BusinessPartners", {"CardCode": "C-B1", "CardName": "B1 test",
                                                             "CardType": "cCustomer", "Currency": "##"}),
                             Op("POST", "Orders", _order("B-1")), Op("POST", "Orders", _order("B-2"))])
    assert [a.status for a in answers] == [201, 201, 201]
    docs = [a.json() for a in answers[1:]]
    assert [d["NumAtCard"] for d in docs] == ["B-1", "B-2"] and docs[0]["DocTotal"] == Decimal("118.80")
    assert {o["NumAtCard"] for o in running.emulator.store.orders()} == {"B-1", "B-2"}
    assert running.emulator.counters["requests"] <= 2  # the login and one $batch


def test_one_refused_document_does_not_stop_the_others(b1):
    _, running, client = b1
    client.request("POST", "BusinessPartners", json={"CardCode": "C-B1", "CardName": "B1", "Currency": "##"})
    single = client.request("POST", "Orders", json=_order("S-1", DocumentLines=[{**LINE, "VatGroup": "US"}]),
                            ok_statuses=(400,))
    answers = batch(client, [Op("POST", "Orders", _order("B-1")),
                             Op("POST", "Orders", _order("B-2", DocumentLines=[{**LINE, "VatGroup": "US"}])),
                             Op("POST", "Orders", _order("B-3")),
                             Op("POST", "Orders", _order("B-1"))])  # a customer reference already used
    assert [a.status for a in answers] == [201, 400, 201, 400]
    assert answers[1].json() == single.json()  # the same validation and error as alone
    assert answers[3].json()["error"]["code"] == -5002
    assert sorted(o["NumAtCard"] for o in running.emulator.store.orders()) == ["B-1", "B-3"]


def test_without_continue_on_error_the_batch_stops_at_the_first_failure(b1):
    _, running, client = b1
    client.request("POST", "BusinessPartners", json={"CardCode": "C-B1", "CardName": "B1", "Currency": "##"})
    root = client.base_url.split("://", 1)[1].partition("/")[2]
    items = [[multipart.Message(content_id=str(n), method="POST", target=f"/{root}/Orders",
                                headers={"Content-Type": "application/json"}, body=body)]
             for n, body in enumerate([b'{"CardCode": "nobody"}', b"{}"], 1)]
    content_type, content = multipart.write(items, response=False)
    resp = client.request("POST", "$batch", content=content, headers={"Content-Type": content_type},
                          expect_json=False)
    assert resp.status == 200 and "preference-applied" not in resp.headers
    answers = multipart.read(resp.headers["content-type"], resp.content, response=True)
    assert len(answers) == 1 and answers[0].status == 400 and answers[0].content_id == "1"
    assert running.emulator.store.orders() == []


def test_a_change_set_is_all_or_nothing(b1):
    _, running, client = b1
    client.request("POST", "BusinessPartners", json={"CardCode": "C-B1", "CardName": "B1", "Currency": "##"})
    root = client.base_url.split("://", 1)[1].partition("/")[2]
    good, bad = dumps(_order("CS-1")), dumps(_order("CS-2", DocDueDate="soon"))
    changeset = [multipart.Message(content_id=str(n), method="POST", target=f"/{root}/Orders",
                                   headers={"Content-Type": "application/json"}, body=body)
                 for n, body in enumerate([good, bad], 1)]
    content_type, content = multipart.write([changeset], response=False)
    resp = client.request("POST", "$batch", content=content, expect_json=False,
                          headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"})
    (answer,) = multipart.read(resp.headers["content-type"], resp.content, response=True)
    assert isinstance(answer, multipart.Message) and answer.status == 400 and answer.content_id == "2"
    assert running.emulator.store.orders() == []  # CS-1 was rolled back with its change set
    assert running.emulator.store.counters().get("orders_created", 0) == 0


def test_expired_session_refuses_the_whole_batch_then_the_client_logs_in_again(b1):
    _, running, client = b1
    batch(client, [Op("POST", "BusinessPartners", {"CardCode": "C-B1", "CardName": "B1", "Currency": "##"})])
    running.emulator.expire_sessions()
    answers = batch(client, [Op("POST", "Orders", _order("E-1"))])
    assert [a.status for a in answers] == [201] and running.emulator.counters["logins"] == 2
    assert [o["NumAtCard"] for o in running.emulator.store.orders()] == ["E-1"]


def test_publisher_batches_quarantine_the_refused_one_and_rerun_writes_nothing(tmp_path, small_world_dir):
    import shutil

    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    settings = make_settings(tmp_path)
    made = build_marts(settings.warehouse_path, n_invoices=36, n_customers=12)
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("UPDATE marts.fct_invoice_lines SET sku = 'BAD SKU' WHERE invoice_number = 'INV-1006'")
    con.close()
    running = start_b1(settings)
    try:
        em = running.emulator
        first = publish_orders(settings, b1_connection(running, settings), settings.warehouse_path)
        assert first.failed == 1 and first.quarantined == 1 and first.mismatches[0].key == "INV-1006"
        assert first.created == made["invoices"] - made["voided"] - 1
        # partners and orders each went as one $batch (36 invoices < BATCH_SIZE), not one request each
        assert first.requests < 12, first.summary()
        created = em.store.counters()["orders_created"]
        again = publish_orders(settings, b1_connection(running, settings), settings.warehouse_path)
        assert again.writes == 0 and again.failed == 1 and em.store.counters()["orders_created"] == created
        con = duckdb.connect(str(settings.warehouse_path))
        con.execute("UPDATE marts.fct_invoice_lines SET sku = 'SKU-OK' WHERE invoice_number = 'INV-1006'")
        con.close()
        fixed = publish_orders(settings, b1_connection(running, settings), settings.warehouse_path)
        assert fixed.ok and fixed.created == 1, fixed.summary()
        assert_b1_matches_marts(em, settings.warehouse_path)
    finally:
        running.stop()
