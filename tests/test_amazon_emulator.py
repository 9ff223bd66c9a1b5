"""The Amazon emulator against SP-API's wire format: paths, field names and types, money shapes,
pagination, incremental filters, two-minute rule, auth, per-operation 429s."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from finance_pipeline.platforms.amazon import MARKETPLACES
from finance_pipeline.platforms.amazon.emulator import AmazonEmulator

UK, US = MARKETPLACES["UK"][0], MARKETPLACES["US"][0]
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
MONEY = re.compile(r"^-?\d+\.\d\d$")


@pytest.fixture
def amazon(sandbox, start_emulator, settings):
    running = start_emulator(AmazonEmulator, sandbox, time_scale=1000.0)
    c = running.emulator.credentials()
    token = httpx.post(c["token_url"], data={"grant_type": "refresh_token", "refresh_token": c["refresh_token"],
                                            "client_id": c["client_id"], "client_secret": c["client_secret"]}).json()
    assert token["token_type"] == "bearer" and token["expires_in"] == 3600
    http = httpx.Client(base_url=running.url, headers={"x-amz-access-token": token["access_token"]})
    yield running, http
    http.close()


def _all(http, path, params, token_param, items, next_of):
    out, pages = [], 0
    while True:
        r = http.get(path, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        out.extend(items(body))
        pages += 1
        token = next_of(body)
        if not token:
            return out, pages
        params = {**params, token_param: token}


def test_search_orders_wire_format_and_pagination(amazon, sandbox):
    running, http = amazon
    params = {"lastUpdatedAfter": "2025-01-01T00:00:00Z", "maxResultsPerPage": 50,
              "includedData": "BUYER,RECIPIENT,PROCEEDS"}
    orders, pages = _all(http, "/orders/2026-01-01/orders", params, "paginationToken",
                         lambda b: b["orders"], lambda b: (b.get("pagination") or {}).get("nextToken"))
    visible = sandbox.clock - timedelta(minutes=2)
    with sandbox.connect() as con:
        (expected,), = con.execute("select count(*) from amazon_orders where purchase_at <= ?", [visible]).fetchall()
    ids = [o["orderId"] for o in orders]
    assert len(ids) == len(set(ids)) == expected and pages == -(-expected // 50)
    o = orders[0]
    assert re.match(r"^\d{3}-\d{7}-\d{7}$", o["orderId"]) and ISO.match(o["createdTime"]) and ISO.match(o["lastUpdatedTime"])
    assert o["salesChannel"]["marketplaceId"] in (UK, US) and o["fulfillment"]["fulfilledBy"] == "AMAZON"
    for o in orders:
        money = o["proceeds"]["grandTotal"]
        assert isinstance(money["amount"], str) and MONEY.match(money["amount"])
        assert money["currencyCode"] == ("GBP" if o["salesChannel"]["marketplaceId"] == UK else "USD")
        items = sum((Decimal(b["subtotal"]["amount"]) for i in o["orderItems"] for b in i["proceeds"]["breakdowns"]),
                    Decimal(0))
        assert items == Decimal(money["amount"])
        us = o["salesChannel"]["marketplaceId"] == US
        for item in o["orderItems"]:
            assert isinstance(item["quantityOrdered"], int) and item["product"]["sellerSku"]
            assert ("tax" in item) == us  # US sales tax: collected by Amazon as marketplace facilitator
            if us:
                assert item["tax"]["taxCollections"][0]["model"] == "MARKETPLACE_FACILITATOR"
    statuses = {o["fulfillment"]["fulfillmentStatus"] for o in orders}
    assert "SHIPPED" in statuses and "CANCELLED" in statuses


def test_incremental_filter_and_the_two_minute_rule(amazon, sandbox):
    running, http = amazon
    clock = sandbox.clock
    after = (clock - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = http.get("/orders/2026-01-01/orders", params={"lastUpdatedAfter": after})
    body = r.json()
    assert body["lastUpdatedBefore"] == (clock - timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert body["orders"] and all(o["lastUpdatedTime"] >= after for o in body["orders"])
    with sandbox.connect() as con:
        (n,) = con.execute("""select count(*) from amazon_orders where greatest(purchase_at,
            case when shipped_at <= $b then shipped_at end, case when cancelled_at <= $b then cancelled_at end) >= $a
            and purchase_at <= $b""", {"a": clock - timedelta(days=3), "b": clock - timedelta(minutes=2)}).fetchone()
    assert len(body["orders"]) == n
    future = clock.strftime("%Y-%m-%dT%H:%M:%SZ")
    for bad in ({"lastUpdatedAfter": after, "lastUpdatedBefore": future},
                {"lastUpdatedAfter": after, "createdAfter": after}, {}):
        r = http.get("/orders/2026-01-01/orders", params=bad)
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "InvalidInput"


def test_pagination_token_requires_the_same_arguments(amazon):
    running, http = amazon
    first = http.get("/orders/2026-01-01/orders", params={"createdAfter": "2025-01-01T00:00:00Z",
                                                          "maxResultsPerPage": 10}).json()
    token = first["pagination"]["nextToken"]
    r = http.get("/orders/2026-01-01/orders", params={"createdAfter": "2025-02-01T00:00:00Z", "paginationToken": token})
    assert r.status_code == 400


def test_v0_get_orders_and_order_items(amazon):
    running, http = amazon
    assert http.get("/orders/v0/orders", params={"LastUpdatedAfter": "2025-12-01T00:00:00Z"}).status_code == 400
    body = http.get("/orders/v0/orders", params={"LastUpdatedAfter": "2025-12-01T00:00:00Z", "MarketplaceIds": US,
                                                 "MaxResultsPerPage": 5}).json()
    payload = body["payload"]
    assert payload["Orders"] and payload["NextToken"] and ISO.match(payload["LastUpdatedBefore"])
    order = payload["Orders"][0]
    assert order["MarketplaceId"] == US and order["FulfillmentChannel"] == "AFN" and order["OrderStatus"] in (
        "Shipped", "Unshipped", "Canceled")
    items = http.get(f"/orders/v0/orders/{order['AmazonOrderId']}/orderItems").json()["payload"]["OrderItems"]
    for it in items:
        assert it["ItemPrice"]["CurrencyCode"] == "USD" and isinstance(it["ItemPrice"]["Amount"], str)
        assert it["TaxCollection"] == {"Model": "MarketplaceFacilitator", "ResponsibleParty": "Amazon Services, Inc."}


def test_settlement_groups_and_events_add_up(amazon, sandbox):
    running, http = amazon
    groups, _ = _all(http, "/finances/v0/financialEventGroups", {"FinancialEventGroupStartedAfter": "2025-09-01T00:00:00Z"},
                     "NextToken", lambda b: b["payload"]["FinancialEventGroupList"], lambda b: b["payload"].get("NextToken"))
    closed = [g for g in groups if g["ProcessingStatus"] == "Closed"]
    assert closed and any(g["ProcessingStatus"] == "Open" for g in groups)
    withheld = Decimal(0)
    for g in closed:
        total = g["OriginalTotal"]
        assert isinstance(total["CurrencyAmount"], (int, float)) or "." in str(total["CurrencyAmount"])
        assert g["ConvertedTotal"]["CurrencyCode"] == "GBP" and g["FundTransferStatus"] in ("Succeeded", "Processing")
        events, _ = _all(http, f"/finances/v0/financialEventGroups/{g['FinancialEventGroupId']}/financialEvents",
                         {"MaxResultsPerPage": 7}, "NextToken", lambda b: [b["payload"]["FinancialEvents"]],
                         lambda b: b["payload"].get("NextToken"))
        amounts = []
        for page in events:
            for e in page["ShipmentEventList"] + page["RefundEventList"]:
                for item in e.get("ShipmentItemList", []) + e.get("ShipmentItemAdjustmentList", []):
                    for lst in ("ItemChargeList", "ItemFeeList", "ItemChargeAdjustmentList", "ItemFeeAdjustmentList"):
                        for c in item.get(lst, []):
                            amounts.append((c.get("ChargeAmount") or c.get("FeeAmount"))["CurrencyAmount"])
                    for block in item["ItemTaxWithheldList"]:
                        assert block["TaxCollectionModel"] == "MarketplaceFacilitator"
                        for c in block["TaxesWithheld"]:
                            amounts.append(c["ChargeAmount"]["CurrencyAmount"])
                            withheld += Decimal(str(c["ChargeAmount"]["CurrencyAmount"]))
            for e in page["ServiceFeeEventList"]:
                amounts.extend(f["FeeAmount"]["CurrencyAmount"] for f in e["FeeList"])
        assert sum((Decimal(str(a)) for a in amounts), Decimal(0)) == Decimal(str(total["CurrencyAmount"]))
    assert withheld < 0  # tax withheld on US shipments, net of what refunds gave back


def test_finances_range_over_180_days_is_empty(amazon):
    running, http = amazon
    body = http.get("/finances/v0/financialEventGroups", params={
        "FinancialEventGroupStartedAfter": "2025-01-01T00:00:00Z",
        "FinancialEventGroupStartedBefore": "2025-12-01T00:00:00Z"}).json()
    assert body["payload"]["FinancialEventGroupList"] == []


def test_auth_and_rate_limit_answers(sandbox, start_emulator):
    running = start_emulator(AmazonEmulator, sandbox, time_scale=1.0)
    r = httpx.get(running.url + "/finances/v0/financialEventGroups")
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == "Unauthorized"
    c = running.emulator.credentials()
    bad = httpx.post(c["token_url"], data={"grant_type": "refresh_token", "refresh_token": "Atzr|nope",
                                          "client_id": c["client_id"], "client_secret": c["client_secret"]})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    token = httpx.post(c["token_url"], data={"grant_type": "refresh_token", "refresh_token": c["refresh_token"],
                                            "client_id": c["client_id"], "client_secret": c["client_secret"]}).json()
    h = {"x-amz-access-token": token["access_token"]}
    statuses = [httpx.get(running.url + "/orders/2026-01-01/orders", headers=h,
                          params={"createdAfter": "2025-12-30T00:00:00Z"}) for _ in range(21)]
    assert [r.status_code for r in statuses[:20]] == [200] * 20
    last = statuses[20]
    assert last.status_code == 429 and last.json()["errors"][0]["code"] == "QuotaExceeded"
    assert last.headers["x-amzn-RateLimit-Limit"] == "0.0056" and "x-amzn-RequestId" in last.headers
    assert running.emulator.counters["over_limit"] == 1
