"""The eBay emulator speaks eBay's wire format: OAuth, Amount strings with conversions, UTC
millisecond timestamps, limit/offset paging with href/next/total, the lastmodifieddate filter and
its 90-day reach, orderIds, 204 on empty Finances lists, daily quotas with errorId 2001, and the
world rendered as of the sandbox clock."""
from __future__ import annotations

import base64
import re
import shutil
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from finance_pipeline.platforms.ebay.emulator import EbayEmulator, ebay_time
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
MONEY = re.compile(r"^-?\d+\.\d\d$")


@pytest.fixture(scope="module")
def world(small_world_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("ebay-emulator")
    shutil.copytree(small_world_dir / "sandbox", root / "sandbox")
    return Sandbox(root / "sandbox")


@pytest.fixture(scope="module")
def running(world):
    r = serve(EbayEmulator(world, EmulatorConfig(time_scale=30)))
    yield r
    r.stop()


def token(running, grant: str = "refresh_token") -> str:
    em = running.emulator
    basic = base64.b64encode(f"{em.client_id}:{em.client_secret}".encode()).decode()
    body = {"grant_type": grant}
    if grant == "refresh_token":
        body.update(refresh_token=em.refresh_token, scope="https://api.ebay.com/oauth/api_scope/sell.finances")
    resp = httpx.post(f"{running.url}/identity/v1/oauth2/token", data=body, headers={"Authorization": f"Basic {basic}"})
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["expires_in"] == 7200
    return data["access_token"]


@pytest.fixture(scope="module")
def api(running):
    client = httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {token(running)}"})
    yield client
    client.close()


def _amounts(obj, out):
    if isinstance(obj, dict):
        if "value" in obj and "currency" in obj:
            out.append(obj)
        for v in obj.values():
            _amounts(v, out)
    elif isinstance(obj, list):
        for v in obj:
            _amounts(v, out)
    return out


def test_oauth(running):
    em = running.emulator
    assert httpx.get(f"{running.url}/sell/fulfillment/v1/order").status_code == 401
    bad = httpx.post(f"{running.url}/identity/v1/oauth2/token", data={"grant_type": "refresh_token",
                     "refresh_token": "nope"}, auth=(em.client_id, em.client_secret))
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    assert httpx.post(f"{running.url}/identity/v1/oauth2/token", data={"grant_type": "client_credentials"},
                      auth=(em.client_id, "wrong")).status_code == 401
    app = token(running, "client_credentials")
    denied = httpx.get(f"{running.url}/sell/finances/v1/payout", headers={"Authorization": f"Bearer {app}"})
    assert denied.status_code == 403 and denied.json()["errors"][0]["errorId"] == 1100
    user = token(running)
    assert httpx.get(f"{running.url}/sell/finances/v1/payout", headers={"Authorization": f"Bearer {user}"}).status_code == 200


def test_order_wire_format(api, world):
    body = api.get("/sell/fulfillment/v1/order", params={"limit": 200}).json()
    assert body["orders"] and body["limit"] == 200 and body["offset"] == 0
    us = next(o for o in body["orders"] if o["lineItems"][0]["purchaseMarketplaceId"] == "EBAY_US")
    gb = next(o for o in body["orders"] if o["lineItems"][0]["purchaseMarketplaceId"] == "EBAY_GB")
    for order in (us, gb):
        assert TIME.match(order["creationDate"]) and TIME.match(order["lastModifiedDate"])
        assert re.match(r"^\d\d-\d{5}-\d{5}$", order["orderId"])
        for amount in _amounts(order, []):
            assert isinstance(amount["value"], str) and MONEY.match(amount["value"]), amount
    # eBay US: amounts in the seller's GBP, converted from the buyer's USD; tax collected by eBay
    total = us["pricingSummary"]["total"]
    assert total["currency"] == "GBP" and total["convertedFromCurrency"] == "USD"
    tax = sum(Decimal(t["amount"]["convertedFromValue"]) for li in us["lineItems"] for t in li["ebayCollectAndRemitTaxes"])
    assert tax > 0 and tax == Decimal(us["pricingSummary"]["tax"]["convertedFromValue"])
    subtotal = sum(Decimal(li["lineItemCost"]["convertedFromValue"]) for li in us["lineItems"])
    discount = -Decimal(us["pricingSummary"].get("priceDiscount", {"convertedFromValue": "0"})["convertedFromValue"])
    assert Decimal(total["convertedFromValue"]) == subtotal - discount + tax
    # eBay UK: GBP, VAT inside the price, nothing collected by eBay
    assert gb["pricingSummary"]["total"] == {"value": gb["pricingSummary"]["total"]["value"], "currency": "GBP"}
    assert all(li["ebayCollectAndRemitTaxes"] == [] for li in gb["lineItems"])
    with world.connect() as con:
        expected = con.execute("select buyer_total from ebay_orders where order_id = ?", [gb["orderId"]]).fetchone()[0]
    assert Decimal(gb["pricingSummary"]["total"]["value"]) == expected


def test_paging_walks_every_order_once(api, world):
    since = world.clock - timedelta(days=80)
    params = {"filter": f"lastmodifieddate:[{ebay_time(since)}..]", "limit": 7}
    body = api.get("/sell/fulfillment/v1/order", params=params).json()
    total, seen = body["total"], [o["orderId"] for o in body["orders"]]
    while body.get("next"):
        body = api.get(body["next"]).json()
        seen += [o["orderId"] for o in body["orders"]]
    assert len(seen) == len(set(seen)) == total > 7
    with world.connect() as con:
        (n,) = con.execute("""select count(*) from ebay_orders o where created_at <= $c and greatest(paid_at,
            coalesce(case when fulfilled_at <= $c then fulfilled_at end, paid_at),
            coalesce((select max(created_at) from ebay_refunds r where r.order_id = o.order_id and created_at <= $c), paid_at))
            >= $s""", {"c": world.clock, "s": since}).fetchone()
    assert total == n


def test_filter_reach_and_errors(api, world):
    old = world.clock - timedelta(days=91)
    r = api.get("/sell/fulfillment/v1/order", params={"filter": f"lastmodifieddate:[{ebay_time(old)}..]"})
    assert r.status_code == 400 and r.json()["errors"][0]["errorId"] == 30830
    future = world.clock + timedelta(days=1)
    r = api.get("/sell/fulfillment/v1/order", params={"filter": f"creationdate:[{ebay_time(future)}..]"})
    assert r.status_code == 400 and r.json()["errors"][0]["errorId"] == 30850
    r = api.get("/sell/fulfillment/v1/order", params={"filter": "lastmodifieddate:[2025-01-01..]"})
    assert r.status_code == 400
    assert api.get("/sell/fulfillment/v1/order", params={"limit": 1001}).status_code == 400
    # orders beyond the filters' reach are still there by id
    with world.connect() as con:
        ids = [r[0] for r in con.execute("select order_id from ebay_orders where created_at < ? order by created_at limit 3",
                                         [world.clock - timedelta(days=200)]).fetchall()]
    body = api.get("/sell/fulfillment/v1/order", params={"orderIds": ",".join(ids)}).json()
    assert [o["orderId"] for o in body["orders"]] == ids
    assert api.get(f"/sell/fulfillment/v1/order/{ids[0]}").json()["orderId"] == ids[0]
    too_many = ",".join(f"01-00000-{i:05d}" for i in range(51))
    assert api.get("/sell/fulfillment/v1/order", params={"orderIds": too_many}).status_code == 400


def test_finances(api, world):
    since, until = world.clock - timedelta(days=40), world.clock
    flt = f"transactionDate:[{ebay_time(since)}..{ebay_time(until)}]"
    body = api.get("/sell/finances/v1/transaction", params={"filter": flt, "limit": 1000}).json()
    types = {t["transactionType"] for t in body["transactions"]}
    assert {"SALE", "NON_SALE_CHARGE"} <= types
    sale = next(t for t in body["transactions"] if t["transactionType"] == "SALE")
    assert sale["bookingEntry"] == "CREDIT" and MONEY.match(sale["amount"]["value"])
    assert sale["orderId"] == sale["transactionId"]
    paid = [t for t in body["transactions"] if t["transactionStatus"] == "PAYOUT"]
    assert paid and all(t["payoutId"] for t in paid)
    unpaid = [t for t in body["transactions"] if t["transactionStatus"] != "PAYOUT"]
    assert not any("payoutId" in t for t in unpaid)
    # a payout is the net of the transactions it carried
    pid = paid[0]["payoutId"]
    payout = api.get(f"/sell/finances/v1/payout/{pid}").json()
    carried = api.get("/sell/finances/v1/transaction", params={"filter": f"payoutId:{{{pid}}}"}).json()["transactions"]
    net = sum(Decimal(t["amount"]["value"]) * (1 if t["bookingEntry"] == "CREDIT" else -1) for t in carried)
    assert net == Decimal(payout["amount"]["value"]) and len(carried) == payout["transactionCount"]
    # nothing matches: 204 No Content
    empty = f"transactionDate:[{ebay_time(world.clock - timedelta(days=3000))}..{ebay_time(world.clock - timedelta(days=2500))}]"
    assert api.get("/sell/finances/v1/transaction", params={"filter": empty}).status_code == 204
    assert api.get("/sell/finances/v1/transaction", params={"filter": "transactionId:{1}"}).status_code == 400
    payouts = api.get("/sell/finances/v1/payout", params={"limit": 200}).json()
    assert payouts["total"] > 0 and payouts["payouts"][0]["payoutStatus"] in ("SUCCEEDED", "INITIATED")
    assert api.get("/sell/finances/v1/payout", params={"limit": 201}).status_code == 400


def test_date_header_is_the_sandbox_clock(api, world):
    resp = api.get("/sell/finances/v1/payout", params={"limit": 1})
    assert resp.headers.get_list("date") == [world.clock.strftime("%a, %d %b %Y %H:%M:%S GMT")]


def test_as_of_clock(small_world_dir, tmp_path):
    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    sandbox = Sandbox(tmp_path / "sandbox")
    with sandbox.connect() as con:
        oid, at = con.execute("""select r.order_id, r.created_at from ebay_refunds r join ebay_orders o using (order_id)
                                 where o.created_at < $c and r.created_at > $c order by r.created_at limit 1""",
                              {"c": sandbox.clock}).fetchone()
    r = serve(EbayEmulator(sandbox, EmulatorConfig(time_scale=30)))
    try:
        client = httpx.Client(base_url=r.url, headers={"Authorization": f"Bearer {token(r)}"})
        before = client.get(f"/sell/fulfillment/v1/order/{oid}").json()
        sandbox.advance((at - sandbox.clock).total_seconds() / 3600 + 1)
        after = client.get(f"/sell/fulfillment/v1/order/{oid}").json()
        client.close()
    finally:
        r.stop()
    assert len(after["paymentSummary"]["refunds"]) == len(before["paymentSummary"]["refunds"]) + 1
    assert after["lastModifiedDate"] == ebay_time(at) > before["lastModifiedDate"]
    assert after["orderPaymentStatus"] in ("PARTIALLY_REFUNDED", "FULLY_REFUNDED")


def test_daily_quota_answers_429(small_world_dir, tmp_path):
    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    r = serve(EbayEmulator(Sandbox(tmp_path / "sandbox"), EmulatorConfig(time_scale=30), quotas={"finances": 3}))
    try:
        headers = {"Authorization": f"Bearer {token(r)}"}
        codes = [httpx.get(f"{r.url}/sell/finances/v1/payout", headers=headers).status_code for _ in range(4)]
        refused = httpx.get(f"{r.url}/sell/finances/v1/payout", headers=headers)
        fulfillment = httpx.get(f"{r.url}/sell/fulfillment/v1/order", headers=headers, params={"limit": 1})
    finally:
        r.stop()
    assert codes == [200, 200, 200, 429]
    assert refused.json()["errors"][0]["errorId"] == 2001
    assert fulfillment.status_code == 200  # each API has its own quota
    assert r.emulator.counters["over_limit"] == 2
