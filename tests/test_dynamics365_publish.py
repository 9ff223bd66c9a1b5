"""Business Central publisher against the emulator: sales orders with their lines, idempotent re-runs,
an edit updated in place (If-Match, lines replaced), a voided invoice's order deleted, its own invoices
never written back, a refused record quarantined with BC's message, recovery after a write whose
ledger update was lost, injected faults, and a dry run that writes nothing."""
from __future__ import annotations

from datetime import date, datetime, timezone

import duckdb
import pytest

from finance_pipeline.platforms.dynamics365 import client as bc
from finance_pipeline.platforms.dynamics365.emulator import DynamicsEmulator
from finance_pipeline.platforms.dynamics365.publish import publish_sales_orders
from finance_pipeline.publish.ledger import PublishLedger
from finance_pipeline.sandbox import runtime
from xero_fixtures import build_marts, mart_rows, set_line_quantity, set_status


@pytest.fixture
def bcp(settings, sandbox, start_emulator):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_marts(settings.warehouse_path, n_invoices=60, n_customers=12)
    running = start_emulator(DynamicsEmulator, sandbox, time_scale=settings.time_scale)
    runtime.write_endpoints(settings, {"dynamics365": running})
    return settings, running, made


def _publish(settings, **kw):
    return publish_sales_orders(settings, runtime.connection(settings, "dynamics365"), settings.warehouse_path, **kw)


def assert_orders_match_marts(emulator: DynamicsEmulator, warehouse) -> None:
    """Independent of the publisher's read-back: the emulator's store against the marts."""
    marts = mart_rows(warehouse)
    orders = emulator.sales_orders()
    numbers = [o["externalDocumentNumber"] for o in orders]
    assert len(numbers) == len(set(numbers)), "duplicate sales orders"
    live = {n for n, m in marts.items() if m["status"] != "voided" and m["channel"] != "dynamics365"}
    assert set(numbers) == live
    for o in orders:
        m = marts[o["externalDocumentNumber"]]
        assert (o["totalAmountExcludingTax"], o["totalTaxAmount"], o["totalAmountIncludingTax"]) == (
            m["subtotal_amount"], m["tax_amount"], m["total_amount"]), o["externalDocumentNumber"]
        assert o["orderDate"] == m["issued_on"].isoformat() and o["currencyCode"] == m["currency"]
        assert len(o["salesOrderLines"]) == m["line_count"]


def test_publish_rerun_edit_void_and_own_invoices(bcp):
    settings, running, made = bcp
    emulator = running.emulator
    with duckdb.connect(str(settings.warehouse_path)) as con:  # an invoice the US desk raised in BC itself
        con.execute("UPDATE marts.fct_invoices SET channel = 'dynamics365' WHERE invoice_number = 'INV-1002'")
    first = _publish(settings)
    assert first.ok, first.summary()
    expected = made["invoices"] - made["voided"] - 1
    assert first.created == expected and first.of("customer").created >= 1 and first.mismatches == []
    assert first.read_back == expected
    assert_orders_match_marts(emulator, settings.warehouse_path)
    orders = {o["externalDocumentNumber"]: o for o in emulator.sales_orders()}
    assert "INV-1002" not in orders and "INV-1007" not in orders  # own invoice; voided before publishing
    kinds = {ln["lineType"] for o in orders.values() for ln in o["salesOrderLines"]}
    assert "Account" in kinds  # freight (40250), and SKUs BC does not know (trade sales 40100)

    before = emulator.state.counters()
    second = _publish(settings)
    assert second.ok and second.writes == 0 and second.unchanged == expected + made["voided"]
    assert emulator.state.counters() == before

    set_line_quantity(settings.warehouse_path, "INV-1003", 1, 11)
    set_status(settings.warehouse_path, "INV-1004", "voided")
    third = _publish(settings)
    assert third.ok, third.summary()
    assert third.updated == 1 and third.voided == 1 and third.created == 0
    after = {o["externalDocumentNumber"]: o for o in emulator.sales_orders()}
    assert after["INV-1003"]["id"] == orders["INV-1003"]["id"]  # the same order, updated in place
    assert "INV-1004" not in after
    assert_orders_match_marts(emulator, settings.warehouse_path)


def test_bc_items_are_used_when_the_sku_exists(bcp):
    settings, running, _ = bcp
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("UPDATE marts.fct_invoice_lines SET sku = 'FAB-VEL-EMR' WHERE invoice_number = 'INV-1001' "
                    "AND kind = 'goods'")
    assert _publish(settings).ok
    (order,) = [o for o in running.emulator.sales_orders() if o["externalDocumentNumber"] == "INV-1001"]
    goods = [ln for ln in order["salesOrderLines"] if ln["lineObjectNumber"] == "FAB-VEL-EMR"]
    assert goods and all(ln["lineType"] == "Item" for ln in goods)


def test_a_refused_record_is_quarantined_and_the_rest_published(bcp):
    settings, running, made = bcp
    with duckdb.connect(str(settings.warehouse_path)) as con:  # a currency the US company does not keep
        con.execute("UPDATE marts.fct_invoices SET currency = 'CHF' WHERE invoice_number = 'INV-1005'")
    result = _publish(settings)
    refused = [e for e in result.errors if e.object_type == "salesOrder"]
    assert [e.key for e in refused] == ["INV-1005"]
    assert "Application_DialogException" in refused[0].message and "(Currency)" in refused[0].message
    assert result.created == made["invoices"] - made["voided"] - 1 and result.quarantined >= 1
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    rows = con.execute("SELECT entity, record_id, reason FROM ops.quarantine WHERE platform = 'dynamics365' "
                       "AND record_id = 'INV-1005'").fetchall()
    con.close()
    assert len(rows) == 1 and rows[0][0] == "dynamics365.salesOrder" and "Currency" in rows[0][2]
    again = _publish(settings)  # retried, still refused, quarantine not doubled
    assert [e.key for e in again.errors if e.object_type == "salesOrder"] == ["INV-1005"]
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    assert con.execute("SELECT COUNT(*) FROM ops.quarantine WHERE platform = 'dynamics365' "
                       "AND record_id = 'INV-1005'").fetchone()[0] == 1
    con.close()


def test_a_lost_ledger_update_is_recovered_by_looking_up_the_document_number(bcp):
    settings, running, made = bcp
    assert _publish(settings).ok
    emulator = running.emulator
    with duckdb.connect(str(settings.warehouse_path)) as con:
        ledger = PublishLedger(con, "dynamics365")
        # as if the process died after BC committed INV-1010 and before the ledger said done; and the
        # ledger lost every other order (restored from an old backup)
        ledger.mark_pending("salesOrder", "INV-1010", "stale-hash")
        con.execute("DELETE FROM ops.publish_ledger WHERE destination = 'dynamics365' AND object_type = 'salesOrder' "
                    "AND business_key <> 'INV-1010'")
    set_line_quantity(settings.warehouse_path, "INV-1010", 1, 9)
    result = _publish(settings)
    assert result.ok, result.summary()
    counts = result.of("salesOrder")
    assert counts.created == 0 and counts.updated == 1 and counts.recovered == 1
    assert counts.adopted == made["invoices"] - made["voided"] - 1
    assert_orders_match_marts(emulator, settings.warehouse_path)


def test_new_orders_go_up_in_batches_one_refused_the_rest_land_and_a_rerun_sends_nothing(bcp):
    settings, running, made = bcp
    emulator = running.emulator
    with duckdb.connect(str(settings.warehouse_path)) as con:  # refused inside the $batch: a currency BC lacks
        con.execute("UPDATE marts.fct_invoices SET currency = 'CHF' WHERE invoice_number = 'INV-1006'")
    expected = made["invoices"] - made["voided"]
    first = _publish(settings)
    assert first.created == expected - 1 and [e.key for e in first.errors] == ["INV-1006"]
    # every customer and order went up inside $batch requests: a handful of requests, not one per order
    assert emulator.counters["batch_operations"] == expected + first.of("customer").created
    assert first.requests < expected // 2, first.requests  # 12 customer look-ups, items, 2 batches, read-back
    numbers = [o["externalDocumentNumber"] for o in emulator.sales_orders()]
    assert len(numbers) == expected - 1 and "INV-1006" not in numbers
    before, operations = emulator.state.counters(), emulator.counters["batch_operations"]
    again = _publish(settings)  # only the refused one is tried again; nothing else is written
    assert again.writes == 0 and [e.key for e in again.errors] == ["INV-1006"]
    assert emulator.counters["batch_operations"] == operations + 1
    assert emulator.state.counters() == before


def test_batch_operations_are_validated_as_single_requests(bcp):
    settings, running, _ = bcp
    emulator = running.emulator
    client = bc.make_client(runtime.connection(settings, "dynamics365"))
    try:
        good = {"number": "CB-1", "displayName": "Batch Co"}
        bad = {"number": "CB-2", "displayName": "Francs Co", "currencyCode": "CHF"}
        with pytest.raises(bc.Refused) as single:
            bc.call(client, "POST", "customers", json=bad)
        answers = bc.batch(client, [("POST", "customers", good), ("POST", "customers", bad),
                                    ("GET", "customers?$filter=number eq 'CB-1'", None)])
        assert [a.status for a in answers] == [201, 400, 200]
        assert answers[0].body["number"] == "CB-1" and answers[0].body["id"]
        assert (answers[1].refusal().code, answers[1].refusal().message) == (single.value.code, single.value.message)
        assert [c["number"] for c in answers[2].body["value"]] == ["CB-1"]
        again = bc.batch(client, [("POST", "customers", good)])  # a duplicate is refused as a single POST is
        assert again[0].refusal().code == "Internal_EntityWithSameKeyExists"
        assert emulator.state.counters()["customers_created"] == 1
        root = client.base_url.rpartition("/")[0]
        for body, headers, word in (
                ({"requests": [{"id": str(n), "method": "GET", "url": "customers"} for n in range(101)]}, {}, "maximum"),
                ({"requests": [{"id": "1", "method": "POST", "url": "$batch", "body": {"requests": []}}]}, {}, None),
                ({"requests": [{"id": "1", "method": "POST", "url": "customers", "body": good}]},
                 {"Isolation": "snapshot"}, "Isolation")):
            resp = client.request("POST", f"{root}/$batch", json=body, headers=headers, ok_statuses={400})
            if word is None:  # a nested batch: refused as that operation's answer
                assert resp.json()["responses"][0]["status"] == 400
            else:
                assert resp.status == 400 and word in resp.json()["error"]["message"]
    finally:
        bc.close(client)


def test_faults_leave_no_duplicate_and_a_rerun_completes(settings, sandbox, start_emulator):
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_marts(settings.warehouse_path, n_invoices=40, n_customers=10)
    running = start_emulator(DynamicsEmulator, sandbox, time_scale=settings.time_scale, fault_rate=0.15,
                             timeout_delay_s=1.0)
    runtime.write_endpoints(settings, {"dynamics365": running})
    for _ in range(4):
        result = _publish(settings)
        if result.ok:
            break
    assert result.ok, result.summary()
    assert sum(running.emulator.faults.values()) > 0
    running.emulator.config.fault_rate = 0.0
    assert_orders_match_marts(running.emulator, settings.warehouse_path)
    assert len(running.emulator.sales_orders()) == made["invoices"] - made["voided"]


def test_dry_run_sends_and_writes_nothing(bcp):
    settings, running, made = bcp
    result = _publish(settings, dry_run=True)
    assert result.dry_run["would_send"]["salesOrder.POST (after look-up)"] == made["invoices"] - made["voided"]
    assert running.emulator.sales_orders() == [] and running.emulator.counters["requests"] == 0
    assert (settings.data_dir / "publish" / "dry_run" / "dynamics365.json").exists()


def test_world_invoice_dates_are_business_dates():
    # the channel's invoices are dated: ordered_at is the invoice date at midnight UTC (same London date)
    from finance_pipeline.platforms.dynamics365.world import midnight
    from finance_pipeline.sandbox.world import business_date

    for d in (date(2025, 3, 30), date(2025, 7, 1), date(2025, 10, 26)):
        assert business_date(midnight(d)) == d
    assert midnight(date(2025, 1, 1)) == datetime(2025, 1, 1, tzinfo=timezone.utc)
