"""The WooCommerce emulator speaks WooCommerce's REST API (wc/v3): Basic or query-string key auth,
WordPress REST errors, decimal-string money (unrounded line taxes, negative refund lines), store-local
and GMT dates, page/per_page paging with X-WP-Total/X-WP-TotalPages/Link, exclusive date filters
(store-local unless dates_are_gmt), statuses as of the clock, and the host's 429 with its headers."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from finance_pipeline.platforms.woocommerce.emulator import HOST_LIMIT, WooCommerceEmulator

MONEY = re.compile(r"^-?\d+\.\d{2}$")
NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
API = "/wp-json/wc/v3"


@pytest.fixture
def store(sandbox, start_emulator):
    running = start_emulator(WooCommerceEmulator, sandbox, time_scale=30)
    keys = running.emulator.keys
    client = httpx.Client(base_url=running.url + API, auth=(keys["consumer_key"], keys["consumer_secret"]), timeout=10)
    yield running, client
    client.close()


def world(sandbox, sql, params=None):
    con = sandbox.connect()
    try:
        return con.execute(sql, params or {"c": sandbox.clock}).fetchall()
    finally:
        con.close()


def test_auth_basic_query_and_errors(store):
    running, client = store
    keys = running.emulator.keys
    assert client.get("/orders", params={"per_page": 1}).status_code == 200
    via_query = httpx.get(running.url + API + "/orders", params={"per_page": 1, **{
        "consumer_key": keys["consumer_key"], "consumer_secret": keys["consumer_secret"]}})
    assert via_query.status_code == 200
    anonymous = httpx.get(running.url + API + "/orders")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "woocommerce_rest_cannot_view"
    forged = httpx.get(running.url + API + "/orders", auth=(keys["consumer_key"], "cs_wrong"))
    assert forged.status_code == 401
    assert forged.json() == {"code": "woocommerce_rest_authentication_error", "message": "Consumer secret is invalid.",
                             "data": {"status": 401}}


def test_order_fields_money_and_dates(store, sandbox):
    running, client = store
    resp = client.get("/orders", params={"per_page": 100, "orderby": "id", "order": "asc"})
    orders = resp.json()
    assert resp.headers["x-wp-total"] == str(world(sandbox, "select count(*) from woocommerce_orders where created_at <= $c")[0][0])
    o = next(x for x in orders if x["status"] == "completed" and x["line_items"])
    for name in ("total", "total_tax", "cart_tax", "shipping_total", "shipping_tax", "discount_total", "discount_tax"):
        assert MONEY.match(o[name]), (name, o[name])
    assert isinstance(o["id"], int) and o["number"] == str(o["id"]) and o["currency"] == "EUR"
    assert o["prices_include_tax"] is True and o["payment_method"] in ("stripe", "ppcp-gateway")
    assert o["transaction_id"] and o["date_paid_gmt"]
    for name in ("date_created", "date_created_gmt", "date_modified", "date_modified_gmt", "date_paid_gmt"):
        assert NAIVE.match(o[name]), (name, o[name])
    line = o["line_items"][0]
    assert MONEY.match(line["total"]) and MONEY.match(line["subtotal_tax"])
    assert isinstance(line["price"], (int, float)) and line["taxes"][0]["id"] == o["tax_lines"][0]["rate_id"]
    # the order's money adds up the way WooCommerce's does
    lines_total = sum(Decimal(l["total"]) + Decimal(l["total_tax"]) for l in o["line_items"])
    assert Decimal(o["total"]) == lines_total + Decimal(o["shipping_total"]) + Decimal(o["shipping_tax"])
    assert Decimal(o["total_tax"]) == Decimal(o["cart_tax"]) + Decimal(o["shipping_tax"])
    meta = {m["key"]: m["value"] for m in o["meta_data"]}
    assert meta["_order_base_currency"] == "GBP" and Decimal(meta["_base_currency_exchange_rate"]) > 0


def test_local_and_gmt_dates_follow_the_store_time_zone(store, sandbox):
    _, client = store
    (oid, created), = world(sandbox, """select order_id, created_at from woocommerce_orders
                                        where created_at <= $c and month(created_at) = 7 limit 1""")
    o = client.get(f"/orders/{oid}").json()
    assert o["date_created_gmt"] == created.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    local = datetime.fromisoformat(o["date_created"]) - datetime.fromisoformat(o["date_created_gmt"])
    assert local == timedelta(hours=1)  # Europe/Dublin is UTC+1 in July


def test_pagination_headers_and_limits(store):
    running, client = store
    first = client.get("/orders", params={"per_page": 25, "orderby": "id", "order": "asc"})
    total, pages = int(first.headers["x-wp-total"]), int(first.headers["x-wp-totalpages"])
    assert pages == -(-total // 25) and len(first.json()) == 25
    assert 'rel="next"' in first.headers["link"] and 'rel="prev"' not in first.headers["link"]
    seen = [o["id"] for o in first.json()]
    for page in range(2, pages + 1):
        resp = client.get("/orders", params={"per_page": 25, "orderby": "id", "order": "asc", "page": page})
        seen += [o["id"] for o in resp.json()]
    assert 'rel="next"' not in resp.headers.get("link", "") and 'rel="prev"' in resp.headers["link"]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == total
    assert len(client.get("/orders").json()) == 10  # default per_page
    too_many = client.get("/orders", params={"per_page": 101})
    assert too_many.status_code == 400 and too_many.json()["code"] == "rest_invalid_param"
    beyond = client.get("/orders", params={"per_page": 25, "page": pages + 1})
    assert beyond.status_code == 400 and beyond.json()["code"] == "woocommerce_rest_invalid_page_number"
    by_offset = client.get("/orders", params={"per_page": 5, "offset": 3, "orderby": "id", "order": "asc"}).json()
    assert [o["id"] for o in by_offset] == seen[3:8]


def test_modified_after_is_exclusive_and_gmt_or_store_local(store, sandbox):
    _, client = store
    orders = client.get("/orders", params={"per_page": 100, "orderby": "modified", "order": "desc"}).json()
    newest = orders[0]
    mark = newest["date_modified_gmt"]
    gmt = client.get("/orders", params={"modified_after": mark, "dates_are_gmt": "true"}).json()
    assert newest["id"] not in [o["id"] for o in gmt]  # exclusive
    before = (datetime.fromisoformat(mark) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert newest["id"] in [o["id"] for o in client.get(
        "/orders", params={"modified_after": before, "dates_are_gmt": "true"}).json()]
    # without dates_are_gmt the value is store-local wall time (Dublin): the local twin selects alike
    local_before = (datetime.fromisoformat(newest["date_modified"]) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert newest["id"] in [o["id"] for o in client.get("/orders", params={"modified_after": local_before}).json()]
    bad = client.get("/orders", params={"modified_after": "yesterday"})
    assert bad.status_code == 400


def test_statuses_and_failed_payments(store, sandbox):
    _, client = store
    failed = client.get("/orders", params={"status": "failed", "per_page": 100}).json()
    expected = world(sandbox, "select count(*) from woocommerce_orders where failed_at <= $c")[0][0]
    assert len(failed) == expected > 0
    assert all(o["date_paid_gmt"] is None and o["transaction_id"] == "" and o["needs_payment"] for o in failed)
    refunded = client.get("/orders", params={"status": "refunded", "per_page": 100}).json()
    assert refunded and all(sum(Decimal(r["total"]) for r in o["refunds"]) == -Decimal(o["total"]) for o in refunded)
    assert client.get("/orders", params={"status": "bogus"}).status_code == 400


def test_refunds_negative_lines_and_parent(store, sandbox):
    _, client = store
    resp = client.get("/refunds", params={"per_page": 100})
    refunds = resp.json()
    assert int(resp.headers["x-wp-total"]) == len(refunds) == world(
        sandbox, "select count(*) from woocommerce_refunds where created_at <= $c")[0][0]
    r = next(x for x in refunds if x["line_items"])
    assert MONEY.match(r["amount"]) and Decimal(r["amount"]) > 0 and r["refunded_payment"] is True
    li = r["line_items"][0]
    assert li["quantity"] < 0 and Decimal(li["total"]) < 0 and Decimal(li["total_tax"]) <= 0
    refunded_item = next(m["value"] for m in li["meta_data"] if m["key"] == "_refunded_item_id")
    order = client.get(f"/orders/{r['parent_id']}").json()
    assert int(refunded_item) in [l["id"] for l in order["line_items"]]
    assert {"id": r["id"], "reason": r["reason"], "total": f"-{r['amount']}"} in order["refunds"]
    assert [x["id"] for x in client.get(f"/orders/{r['parent_id']}/refunds").json()].count(r["id"]) == 1
    after = client.get("/refunds", params={"after": r["date_created_gmt"], "dates_are_gmt": "true", "per_page": 100}).json()
    assert r["id"] not in [x["id"] for x in after]


def test_world_is_rendered_as_of_the_clock(store, sandbox):
    _, client = store
    (oid, created, paid), = world(sandbox, """select order_id, created_at, paid_at from woocommerce_orders
                                              where created_at > $c and paid_at is not null
                                              order by created_at limit 1""")
    assert client.get(f"/orders/{oid}").status_code == 404
    sandbox.advance((paid - sandbox.clock).total_seconds() / 3600 - 1 / 3600)  # placed, payment not yet settled
    o = client.get(f"/orders/{oid}").json()
    assert o["status"] == "pending" and o["date_paid"] is None
    sandbox.advance(2 / 3600)
    o = client.get(f"/orders/{oid}").json()
    assert o["status"] == "processing" and o["date_paid_gmt"] == paid.strftime("%Y-%m-%dT%H:%M:%S")


def test_host_rate_limit_answers_429_with_headers(sandbox, start_emulator):
    running = start_emulator(WooCommerceEmulator, sandbox, time_scale=1)
    keys = running.emulator.keys
    with httpx.Client(base_url=running.url + API, auth=(keys["consumer_key"], keys["consumer_secret"])) as c:
        statuses = [c.get("/orders", params={"per_page": 1}) for _ in range(HOST_LIMIT + 3)]
    refused = [r for r in statuses if r.status_code == 429]
    assert len(refused) == 3 and running.emulator.counters["over_limit"] == 3
    r = refused[0]
    assert float(r.headers["retry-after"]) > 0 and r.headers["ratelimit-limit"] == str(HOST_LIMIT)
    assert r.headers["ratelimit-remaining"] == "0" and r.json()["code"] == "rest_too_many_requests"
