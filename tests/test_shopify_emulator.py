"""The Shopify emulator speaks Shopify's REST Admin API: paths, auth, statuses, Link pagination and
its rules, the leaky bucket and its headers, money formats — rendered as of the sandbox clock."""
from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from finance_pipeline.http.pagination import parse_link_header
from finance_pipeline.platforms.shopify.emulator import SHOP_DOMAIN, ShopifyEmulator
from finance_pipeline.sandbox.store import Sandbox

VERSION = "2026-10"
MONEY = re.compile(r"^-?\d+\.\d{2}$")


class StandardPlanShopify(ShopifyEmulator):
    plan = "standard"


@pytest.fixture
def shop(start_emulator, sandbox):
    return start_emulator(ShopifyEmulator, sandbox, time_scale=30)


@pytest.fixture
def api(shop):
    token = shop.emulator.credentials()["access_token"]
    with httpx.Client(base_url=f"{shop.url}/admin/api/{VERSION}", headers={"X-Shopify-Access-Token": token},
                      timeout=10) as client:
        yield client


def world(sandbox: Sandbox, sql: str, *params):
    con = sandbox.connect()
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def walk(api: httpx.Client, path: str, params: dict) -> tuple[list[dict], list[httpx.Response]]:
    """Follow rel="next" to the end; returns every record and every response."""
    key = path.split("/")[-1].removesuffix(".json")
    responses = [api.get(path, params=params)]
    while True:
        assert responses[-1].status_code == 200, responses[-1].text
        nxt = parse_link_header(responses[-1].headers.get("link")).get("next")
        if not nxt:
            break
        responses.append(api.get(nxt))
    records = [r for resp in responses for r in resp.json()["orders" if key == "orders" else key]]
    return records, responses


def test_credentials_and_auth(shop, api):
    creds = shop.emulator.credentials()
    assert creds["shop"] == SHOP_DOMAIN and creds["access_token"].startswith("shpat_")
    bare = httpx.get(f"{shop.url}/admin/api/{VERSION}/orders.json")
    assert bare.status_code == 401
    assert bare.json() == {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    wrong = httpx.get(f"{shop.url}/admin/api/{VERSION}/orders.json", headers={"X-Shopify-Access-Token": "shpat_nope"})
    assert wrong.status_code == 401
    assert api.get("shop.json").json()["shop"]["currency"] == "GBP"
    # any quarterly version is accepted; a malformed one is not a route
    assert api.get(f"{shop.url}/admin/api/2025-01/orders/count.json").status_code == 200
    assert api.get(f"{shop.url}/admin/api/latest/orders/count.json").status_code == 404


def test_status_defaults_to_open(api, sandbox):
    clock = sandbox.clock
    visible = world(sandbox, "select count(*) from shopify_orders where created_at <= ?", clock)[0][0]
    cancelled = world(sandbox, "select count(*) from shopify_orders where created_at <= ? and cancelled_at <= ?",
                      clock, clock)[0][0]
    counts = {s: api.get("orders/count.json", params={"status": s}).json()["count"]
              for s in ("open", "closed", "cancelled", "any")}
    assert api.get("orders/count.json").json()["count"] == counts["open"]
    assert counts["any"] == visible
    assert counts["cancelled"] == cancelled
    assert counts["open"] + counts["closed"] == counts["any"]
    assert 0 < counts["open"] < counts["any"] / 2  # most history is archived: status=any is a must

    default_page = api.get("orders.json", params={"limit": 250}).json()["orders"]
    assert default_page and all(o["closed_at"] is None and o["cancelled_at"] is None for o in default_page)


def test_link_pagination_walks_every_order_once(api, sandbox):
    orders, responses = walk(api, "orders.json", {"status": "any", "limit": 250})
    ids = [o["id"] for o in orders]
    assert len(ids) == len(set(ids)) == api.get("orders/count.json", params={"status": "any"}).json()["count"]
    assert len(responses) == -(-len(ids) // 250)
    first, second, last = (parse_link_header(r.headers.get("link")) for r in (responses[0], responses[1], responses[-1]))
    assert set(first) == {"next"} and set(second) == {"previous", "next"} and "next" not in last
    query = parse_qs(urlparse(first["next"]).query)
    assert set(query) == {"limit", "page_info"}  # filters are baked into the opaque cursor
    # newest first
    created = [datetime.fromisoformat(o["created_at"]) for o in orders]
    assert created == sorted(created, reverse=True)
    # default page size
    assert len(api.get("orders.json", params={"status": "any"}).json()["orders"]) == 50


def test_page_info_rules(api):
    first = api.get("orders.json", params={"status": "any", "limit": 10})
    nxt = parse_link_header(first.headers["link"])["next"]
    token = parse_qs(urlparse(nxt).query)["page_info"][0]
    with_filter = api.get("orders.json", params={"page_info": token, "status": "any"})
    assert with_filter.status_code == 400
    assert "status cannot be passed when page_info is present" in with_filter.json()["errors"]["status"]
    assert api.get("orders.json", params={"page_info": token, "updated_at_min": "2025-01-01"}).status_code == 400
    assert api.get("orders.json", params={"page_info": "garbage"}).status_code == 400
    # limit (and fields) may change mid-walk
    page = api.get("orders.json", params={"page_info": token, "limit": 5, "fields": "id,name"})
    assert page.status_code == 200
    assert [set(o) for o in page.json()["orders"]] == [{"id", "name"}] * 5
    assert page.json()["orders"][0]["id"] == api.get("orders.json", params={"status": "any", "limit": 11}
                                                     ).json()["orders"][10]["id"]
    too_many = api.get("orders.json", params={"status": "any", "limit": 251})
    assert too_many.status_code == 400 and "limit" in too_many.json()["errors"]


def test_filters(api, sandbox):
    everything, _ = walk(api, "orders.json", {"status": "any", "limit": 250})
    by_id = {o["id"]: o for o in everything}
    cut = "2025-12-01T00:00:00+00:00"
    since, _ = walk(api, "orders.json", {"status": "any", "limit": 250, "updated_at_min": "2025-12-01T00:00:00Z"})
    expected = {o["id"] for o in everything if datetime.fromisoformat(o["updated_at"]) >= datetime.fromisoformat(cut)}
    assert {o["id"] for o in since} == expected and expected
    # an offset in the filter value means the same instant
    same, _ = walk(api, "orders.json", {"status": "any", "limit": 250, "updated_at_min": "2025-12-01T01:00:00+01:00"})
    assert {o["id"] for o in same} == expected
    created, _ = walk(api, "orders.json", {"status": "any", "limit": 250, "created_at_max": "2025-02-01T00:00:00Z"})
    assert created and all(datetime.fromisoformat(o["created_at"]) <= datetime.fromisoformat("2025-02-01T00:00:00+00:00")
                           for o in created)
    some = sorted(by_id)[:3]
    picked = api.get("orders.json", params={"status": "any", "ids": ",".join(map(str, some))}).json()["orders"]
    assert sorted(o["id"] for o in picked) == some
    after = api.get("orders.json", params={"status": "any", "since_id": some[0], "limit": 5}).json()["orders"]
    assert [o["id"] for o in after] == sorted(by_id)[1:6]  # since_id walks by id, ascending


def test_order_wire_format(api, sandbox):
    orders, _ = walk(api, "orders.json", {"status": "any", "limit": 250})
    per_order = dict(world(sandbox, "select order_id, sum(amount) from shopify_tax_lines where owner = 'order' group by 1"))
    rounded_once = 0
    for o in orders:
        assert o["currency"] == "GBP" and o["presentment_currency"] in {"GBP", "EUR", "USD", "AUD"}
        for field in ("total_price", "subtotal_price", "total_tax", "total_discounts", "current_total_price"):
            assert MONEY.match(o[field])
            bag = o[f"{field}_set"]
            assert bag["shop_money"]["amount"] == o[field] and bag["shop_money"]["currency_code"] == "GBP"
            assert bag["presentment_money"]["currency_code"] == o["presentment_currency"]
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$", o["created_at"])  # shop-time offset
        pres = {k: Decimal(o[f"{k}_set"]["presentment_money"]["amount"])
                for k in ("total_price", "subtotal_price", "total_tax")}
        shipping = sum(Decimal(s["price_set"]["presentment_money"]["amount"]) for s in o["shipping_lines"])
        tax_on_top = Decimal(0) if o["taxes_included"] else pres["total_tax"]
        assert pres["total_price"] == pres["subtotal_price"] + shipping + tax_on_top
        line_tax = sum(Decimal(t["price_set"]["presentment_money"]["amount"])
                       for li in o["line_items"] for t in li["tax_lines"])
        ship_tax = sum(Decimal(t["price_set"]["presentment_money"]["amount"])
                       for s in o["shipping_lines"] for t in s["tax_lines"])
        # total_tax is the order-level tax_lines; rounded once per order (S13) it can be a cent or
        # two off the line and shipping tax lines, and only where the world says so
        assert pres["total_tax"] == sum(Decimal(t["price_set"]["presentment_money"]["amount"]) for t in o["tax_lines"])
        order_level = per_order.get(o["id"])
        assert pres["total_tax"] == (line_tax + ship_tax if order_level is None else order_level), o["id"]
        assert abs(pres["total_tax"] - (line_tax + ship_tax)) <= Decimal("0.02")
        rounded_once += pres["total_tax"] != line_tax + ship_tax
    assert rounded_once >= 5

    trade = [o for o in orders if o["payment_terms"]]
    assert trade and all(o["tags"] == "trade" and o["source_name"] == "shopify_draft_order" for o in trade)
    assert {o["financial_status"] for o in trade} <= {"pending", "voided"}
    due = {r[0]: r[1] for r in world(sandbox, "select order_id, due_on from shopify_orders where kind = 'trade'")}
    for o in trade:
        terms = o["payment_terms"]
        assert terms["payment_terms_type"] == "net" and terms["payment_terms_name"] == f"Net {terms['due_in_days']}"
        schedule = terms["payment_schedules"][0]
        assert datetime.fromisoformat(schedule["due_at"]).date() == due[o["id"]]
        assert schedule["currency"] == o["presentment_currency"]
    assert any(o["customer"]["tax_exempt"] for o in trade)

    us = [o for o in orders if o["shipping_address"]["country_code"] == "US" and not o["payment_terms"]]
    assert us and all(o["shipping_address"]["province_code"] for o in us)
    assert any(len(li["tax_lines"]) > 1 for o in us for li in o["line_items"])  # state + county + city

    adjustments = [a for o in orders for r in o["refunds"] for a in r["order_adjustments"]]
    assert adjustments and all(a["kind"] == "shipping_refund" and a["amount"].startswith("-")
                               and a["tax_amount"].startswith("-") for a in adjustments
                               if Decimal(a["tax_amount"]))
    statuses = {o["financial_status"] for o in orders}
    assert {"paid", "partially_refunded", "refunded", "pending", "voided"} <= statuses


def test_as_of_clock(api, sandbox):
    clock = sandbox.clock
    # an order placed before the clock whose (late) refund comes after it
    order_id, refund_at = world(sandbox, """
        select o.order_id, min(r.created_at) from shopify_orders o join shopify_refunds r using (order_id)
        where o.created_at <= ? and o.kind = 'retail' and o.edited_at is null and o.cancelled_at is null
        group by 1 having min(r.created_at) > ? and min(r.created_at) <= ? + interval 60 day
        order by 2 limit 1""", clock, clock, clock)[0]
    before = api.get(f"orders/{order_id}.json").json()["order"]
    assert before["refunds"] == [] and before["financial_status"] == "paid"
    assert api.get(f"orders/{order_id}/refunds.json").json() == {"refunds": []}
    count_before = api.get("orders/count.json", params={"status": "any"}).json()["count"]

    hours = (refund_at - clock).total_seconds() / 3600 + 1
    sandbox.advance(hours=hours)
    after = api.get(f"orders/{order_id}.json").json()["order"]
    assert len(after["refunds"]) == 1 and after["financial_status"] in ("partially_refunded", "refunded")
    assert datetime.fromisoformat(after["updated_at"]) == refund_at.replace(microsecond=0)
    assert datetime.fromisoformat(after["updated_at"]) > datetime.fromisoformat(before["updated_at"])
    assert Decimal(after["current_total_price"]) < Decimal(after["total_price"])
    # the order now comes back to an updated_at_min sync started just before the refund
    since = (refund_at - timedelta(minutes=1)).isoformat()
    changed = api.get("orders.json", params={"status": "any", "updated_at_min": since, "limit": 250}).json()["orders"]
    assert order_id in {o["id"] for o in changed}
    # and new orders appeared
    visible = world(sandbox, "select count(*) from shopify_orders where created_at <= ?", sandbox.clock)[0][0]
    assert api.get("orders/count.json", params={"status": "any"}).json()["count"] == visible > count_before
    refund_txns = api.get(f"orders/{order_id}/transactions.json").json()["transactions"]
    assert [t["kind"] for t in refund_txns].count("refund") == 1


def test_future_orders_are_not_found(api, sandbox):
    (future,) = world(sandbox, "select min(order_id) from shopify_orders where created_at > ?", sandbox.clock)[0]
    assert api.get(f"orders/{future}.json").status_code == 404
    assert api.get(f"orders/{future}/transactions.json").status_code == 404


def test_payouts_and_balance_transactions(api, sandbox):
    clock = sandbox.clock
    payouts, _ = walk(api, "shopify_payments/payouts.json", {"limit": 100})
    truth = {r[0]: r[1] for r in world(sandbox, "select payout_id, amount from shopify_payouts where visible_at <= ?", clock)}
    assert {p["id"]: Decimal(p["amount"]) for p in payouts} == truth
    assert [p["date"] for p in payouts] == sorted((p["date"] for p in payouts), reverse=True)
    assert all(p["status"] == "paid" and p["currency"] == "GBP" for p in payouts)
    recent = api.get("shopify_payments/payouts.json", params={"date_min": payouts[2]["date"]}).json()["payouts"]
    assert [p["id"] for p in recent] == [p["id"] for p in payouts[:3]]

    txns, _ = walk(api, "shopify_payments/balance/transactions.json", {"limit": 250})
    n_visible = world(sandbox, "select count(*) from shopify_balance_transactions where processed_at <= ?", clock)[0][0]
    assert len(txns) == len({t["id"] for t in txns}) == n_visible
    processed = [datetime.fromisoformat(t["processed_at"]) for t in txns]
    assert processed == sorted(processed, reverse=True)  # most recent first
    pending = [t for t in txns if t["payout_status"] == "pending"]
    assert pending and all(t["payout_id"] is None for t in pending)
    assert all(t["payout_id"] in truth for t in txns if t["payout_status"] == "paid")
    for t in txns:
        assert Decimal(t["net"]) == Decimal(t["amount"]) - Decimal(t["fee"])
    # payout = sum of its balance transactions (R1)
    payout = payouts[5]
    carried = api.get("shopify_payments/balance/transactions.json",
                      params={"payout_id": payout["id"], "limit": 250}).json()["transactions"]
    assert carried and sum(Decimal(t["net"]) for t in carried) == Decimal(payout["amount"])
    only_pending = api.get("shopify_payments/balance/transactions.json", params={"payout_status": "pending"})
    assert {t["id"] for t in only_pending.json()["transactions"]} == {t["id"] for t in pending}


def test_call_limit_header(api):
    resp = api.get("orders/count.json")
    used, size = resp.headers["X-Shopify-Shop-Api-Call-Limit"].split("/")
    assert size == "400" and 1 <= int(used) <= 400


def test_standard_plan_throttles_with_429(start_emulator, sandbox):
    running = start_emulator(StandardPlanShopify, sandbox, time_scale=30)
    token = running.emulator.credentials()["access_token"]
    refused = []
    with httpx.Client(base_url=f"{running.url}/admin/api/{VERSION}", headers={"X-Shopify-Access-Token": token}) as c:
        for _ in range(200):
            resp = c.get("orders/count.json")
            if resp.status_code == 429:
                refused.append(resp)
            else:
                assert resp.headers["X-Shopify-Shop-Api-Call-Limit"].endswith("/40")
    assert refused, "hammering a standard-plan shop must hit the leaky bucket"
    resp = refused[0]
    assert resp.json() == {"errors": "Exceeded 2 calls per second for api client. "
                                     "Reduce request rates to resume uninterrupted service."}
    assert 0 < float(resp.headers["Retry-After"]) <= 1.0
    assert resp.headers["X-Shopify-Shop-Api-Call-Limit"] == "40/40"
    assert running.emulator.counters["over_limit"] == len(refused)


def test_duplicate_page_fault(start_emulator, sandbox):
    running = start_emulator(ShopifyEmulator, sandbox, time_scale=30, fault_rate=0.3,
                             read_faults=("duplicate_page",), fault_seed=3)
    token = running.emulator.credentials()["access_token"]
    with httpx.Client(base_url=f"{running.url}/admin/api/{VERSION}", headers={"X-Shopify-Access-Token": token}) as c:
        orders, responses = walk(c, "orders.json", {"status": "any", "limit": 250})
        total = c.get("orders/count.json", params={"status": "any"}).json()["count"]
    ids = [o["id"] for o in orders]
    assert running.emulator.faults["duplicate_page"] > 0
    assert len(ids) > len(set(ids)) == total  # pages served twice, nothing missing


def test_rendered_state_agrees_with_the_list_filters(api, sandbox):
    """`updated_at`, `closed_at` and `cancelled_at` are decided twice — in SQL to filter and sort
    lists, in Python to render — and must agree for every order (after a clock move too)."""
    from finance_pipeline.platforms.shopify.render import order_state_sql

    sandbox.advance(hours=24 * 20)
    orders, _ = walk(api, "orders.json", {"status": "any", "limit": 250})
    rendered = {o["id"]: (datetime.fromisoformat(o["updated_at"]),
                          o["closed_at"] and datetime.fromisoformat(o["closed_at"]).replace(microsecond=0),
                          o["cancelled_at"] is not None) for o in orders}
    con = sandbox.connect()
    try:
        rows = con.execute(f"SELECT order_id, updated_at_asof, date_trunc('second', closed_at_asof), cancelled_asof "
                           f"FROM ({order_state_sql('TRUE')})", {"clock": sandbox.clock}).fetchall()
    finally:
        con.close()
    assert {r[0]: (r[1], r[2], r[3]) for r in rows} == rendered
