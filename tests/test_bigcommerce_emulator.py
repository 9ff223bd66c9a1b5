"""BigCommerce emulator fidelity: auth and its error shapes, V2 money and dates, the 204 past the
end, inclusive RFC 2822 / ISO 8601 `min_date_modified`, sorting, products, V3 transactions and
refunds (`created:min`, `order_id:in`, pagination meta), rate-limit headers and the 429 without
Retry-After, and order status as of the clock."""
from __future__ import annotations

import email.utils
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from finance_pipeline.platforms.bigcommerce.emulator import QUOTA, BigCommerceEmulator


@pytest.fixture
def api(sandbox, start_emulator):
    running = start_emulator(BigCommerceEmulator, sandbox, time_scale=30)
    creds = running.emulator.credentials()
    http = httpx.Client(base_url=f"{running.url}/stores/{creds['store_hash']}",
                        headers={"X-Auth-Token": creds["access_token"], "Accept": "application/json"})
    yield running, http
    http.close()


def _truth(sandbox, sql: str):
    con = sandbox.connect()
    try:
        return con.execute(sql, [sandbox.clock]).fetchall()
    finally:
        con.close()


def test_auth_errors(api):
    running, http = api
    assert http.get("v2/orders", headers={"X-Auth-Token": "nope"}).status_code == 401
    body = httpx.get(f"{running.url}/stores/{running.emulator.credentials()['store_hash']}/v2/orders").json()
    assert body[0]["status"] == 401  # V2 errors are an array
    v3 = http.get("v3/orders/payment_actions/refunds", headers={"X-Auth-Token": "nope"})
    assert v3.status_code == 401 and v3.json()["status"] == 401 and "title" in v3.json()
    assert httpx.get(f"{running.url}/stores/other/v2/orders",
                     headers={"X-Auth-Token": running.emulator.credentials()["access_token"]}).status_code == 404


def test_v2_wire_format_and_204_past_the_end(api, sandbox):
    _, http = api
    page = http.get("v2/orders", params={"limit": 250}).json()
    o = page[0]
    assert o["total_inc_tax"].endswith(tuple("0123456789")) and len(o["total_inc_tax"].split(".")[1]) == 4
    assert Decimal(o["total_inc_tax"]) == Decimal(o["total_ex_tax"]) + Decimal(o["total_tax"])
    assert email.utils.parsedate_to_datetime(o["date_created"]).utcoffset() == timedelta(0)
    assert o["date_created"].endswith("+0000") and o["currency_code"] == "USD"
    assert o["store_default_currency_code"] == "GBP" and Decimal(o["store_default_to_transactional_exchange_rate"]) > 1
    assert [x["id"] for x in page] == sorted(x["id"] for x in page)
    n = len(_truth(sandbox, "select order_id from bigcommerce_orders where created_at <= ?"))
    past = http.get("v2/orders", params={"limit": 250, "page": n // 250 + 2})
    assert past.status_code == 204 and past.content == b""
    assert http.get("v2/orders/count").json()["count"] == n
    assert http.get("v2/orders", params={"sort": "bogus:asc"}).status_code == 400
    products = http.get(f"v2/orders/{o['id']}/products").json()
    assert sum(Decimal(p["total_ex_tax"]) for p in products) == Decimal(o["subtotal_ex_tax"])
    assert http.get("v2/orders/99999999").status_code == 404


def test_min_date_modified_is_inclusive_in_both_formats(api):
    _, http = api
    orders = http.get("v2/orders", params={"limit": 250, "sort": "date_modified:desc"}).json()
    pivot = orders[len(orders) // 2]
    at = email.utils.parsedate_to_datetime(pivot["date_modified"])
    for value in (pivot["date_modified"], at.isoformat()):
        got = http.get("v2/orders", params={"limit": 250, "min_date_modified": value}).json()
        assert pivot["id"] in {g["id"] for g in got}
        assert all(email.utils.parsedate_to_datetime(g["date_modified"]) >= at for g in got)
        assert len(got) == sum(1 for x in orders if email.utils.parsedate_to_datetime(x["date_modified"]) >= at)


def test_v3_transactions_and_refunds(api, sandbox):
    _, http = api
    (order_id, refund_count), = _truth(sandbox, """select order_id, count(*) from bigcommerce_refunds
                                                   where created_at <= ? group by 1 order by 1 limit 1""")
    txns = http.get(f"v3/orders/{order_id}/transactions").json()
    assert txns["meta"]["pagination"]["total"] == len(txns["data"]) >= 1 + refund_count
    purchase = txns["data"][0]
    assert purchase["event"] == "purchase" and purchase["status"] == "ok" and isinstance(purchase["amount"], float)
    assert purchase["date_created"].endswith("+00:00")
    refunds = http.get("v3/orders/payment_actions/refunds", params={"order_id:in": str(order_id)}).json()["data"]
    assert len(refunds) == refund_count and all(r["order_id"] == order_id for r in refunds)
    everything = http.get("v3/orders/payment_actions/refunds", params={"limit": 250}).json()["data"]
    pivot = everything[len(everything) // 2]
    later = http.get("v3/orders/payment_actions/refunds", params={"limit": 250, "created:min": pivot["created"]})
    assert [r["id"] for r in later.json()["data"]] == [r["id"] for r in everything if r["created"] >= pivot["created"]]
    assert http.get("v3/orders/payment_actions/refunds", params={"page": 99}).status_code == 204
    assert http.get("v3/orders/99999999/transactions").status_code == 404


def test_rate_limit_headers_and_429_without_retry_after(api):
    running, http = api
    ok = http.get("v2/orders", params={"limit": 1})
    assert int(ok.headers["X-Rate-Limit-Requests-Quota"]) == QUOTA
    assert int(ok.headers["X-Rate-Limit-Requests-Left"]) < QUOTA and int(ok.headers["X-Rate-Limit-Time-Window-Ms"]) > 0
    while running.emulator.window.try_acquire() <= 0:
        pass
    refused = http.get("v2/orders", params={"limit": 1})
    assert refused.status_code == 429 and "retry-after" not in refused.headers
    assert refused.headers["X-Rate-Limit-Requests-Left"] == "0" and int(refused.headers["X-Rate-Limit-Time-Reset-Ms"]) > 0
    assert running.emulator.counters["over_limit"] == 1


def test_status_follows_the_clock(api, sandbox):
    _, http = api
    ((order_id, refunded_at, total),) = _truth(sandbox, """select r.order_id, r.created_at, o.total_inc_tax
        from bigcommerce_refunds r join bigcommerce_orders o using (order_id)
        where r.created_at > $1 and o.created_at <= $1 and o.cancelled_at is null order by r.created_at limit 1""")
    before = http.get(f"v2/orders/{order_id}").json()
    if before["status_id"] == 7:
        pytest.skip("the order is not paid yet at the clock")
    assert before["refunded_amount"] == "0.0000" and before["status_id"] in (2, 11, 14)
    sandbox.advance((refunded_at - sandbox.clock).total_seconds() / 3600 + 0.01)
    after = http.get(f"v2/orders/{order_id}").json()
    assert Decimal(after["refunded_amount"]) > 0 and after["status_id"] in (4, 14)
    assert email.utils.parsedate_to_datetime(after["date_modified"]) == refunded_at
