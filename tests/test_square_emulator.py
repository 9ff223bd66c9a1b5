"""Square emulator fidelity: auth, Square-Version, field names and types, Money in integer minor
units, RFC 3339 timestamps, cursors, time filters, SearchOrders rules, payouts and their entries,
the 429 body, as-of-clock rendering — and the official `squareup` SDK listing against it."""
from __future__ import annotations

import re
from collections import Counter

import httpx
import pytest

from finance_pipeline.platforms.square.emulator import SquareEmulator

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ALL = "2013-01-01T00:00:00Z"


@pytest.fixture
def square(sandbox, start_emulator):
    running = start_emulator(SquareEmulator, sandbox, time_scale=30.0)
    client = httpx.Client(base_url=running.url, timeout=120, headers={  # an advance may rebuild the world
        "Authorization": f"Bearer {running.emulator.access_token}", "Square-Version": "2025-08-20"})
    yield running, client
    client.close()


def walk(client, path, items, params=None, method="GET", body=None):
    out, params, body = [], dict(params or {}), dict(body or {})
    while True:
        resp = client.get(path, params=params) if method == "GET" else client.post(path, json=body)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        out.extend(page.get(items, []))
        if not page.get("cursor"):
            return out
        (params if method == "GET" else body)["cursor"] = page["cursor"]


def is_money(m):
    return isinstance(m, dict) and type(m["amount"]) is int and m["currency"] == "GBP"


def test_auth_and_version(square):
    running, client = square
    resp = httpx.get(f"{running.url}/v2/payments", headers={"Authorization": "Bearer EAAAwrong"})
    assert resp.status_code == 401
    assert resp.json()["errors"][0] == {"category": "AUTHENTICATION_ERROR", "code": "UNAUTHORIZED",
                                        "detail": "This request could not be authorized."}
    assert httpx.get(f"{running.url}/v2/payments").status_code == 401
    bad = client.get("/v2/payments", headers={"Square-Version": "2025/08/20"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["code"] == "INVALID_SQUARE_VERSION_FORMAT"
    ok = client.get("/v2/locations")
    assert ok.headers["square-version"] == "2025-08-20"
    assert client.get("/v2/nothing").status_code == 404


def test_payments_fields_money_and_pagination(square, sandbox):
    _, client = square
    payments = walk(client, "/v2/payments", "payments", {"begin_time": ALL, "limit": 37, "sort_order": "ASC"})
    with sandbox.connect() as con:
        (truth,) = con.execute("select count(*) from square_payments where created_at <= ?", [sandbox.clock]).fetchone()
    assert len(payments) == truth and len({p["id"] for p in payments}) == truth
    assert [p["created_at"] for p in payments] == sorted(p["created_at"] for p in payments)
    kinds = Counter((p["source_type"], p["status"]) for p in payments)
    assert kinds[("CARD", "COMPLETED")] and kinds[("CASH", "COMPLETED")] and kinds[("CARD", "FAILED")]
    for p in payments:
        assert TS_RE.match(p["created_at"]) and TS_RE.match(p["updated_at"]) and p["updated_at"] >= p["created_at"]
        assert is_money(p["amount_money"]) and is_money(p["total_money"])
        if p["source_type"] == "CASH":
            assert "processing_fee" not in p and "card_details" not in p
            assert p["cash_details"]["buyer_supplied_money"]["amount"] - p["cash_details"]["change_back_money"]["amount"] \
                == p["amount_money"]["amount"]
        elif p["status"] == "COMPLETED":
            (fee,) = p["processing_fee"]
            assert fee["type"] == "INITIAL" and is_money(fee["amount_money"]) and fee["amount_money"]["amount"] > 0
            assert p["card_details"]["status"] == "CAPTURED"
        elif p["status"] == "FAILED":
            assert p["card_details"]["status"] == "FAILED" and "processing_fee" not in p
            assert p["card_details"]["errors"][0]["category"] == "PAYMENT_METHOD_ERROR"
        if "refunded_money" in p:
            assert p["refund_ids"] and p["refunded_money"]["amount"] <= p["amount_money"]["amount"]
    # larger limits are ignored, not refused
    assert len(client.get("/v2/payments", params={"begin_time": ALL, "limit": 500}).json()["payments"]) == 100
    # without begin_time, only payments created in the last year (Square's default)
    sandbox.advance(hours=24 * 60)
    everything = walk(client, "/v2/payments", "payments", {"begin_time": ALL})
    default = walk(client, "/v2/payments", "payments", {"limit": 100})
    assert 0 < len(default) < len(everything)
    assert min(p["created_at"] for p in default) >= "2025-03-02"


def test_updated_at_filter_and_as_of_clock(square, sandbox):
    _, client = square
    with sandbox.connect() as con:  # the latest return of an older sale
        payment_id, refunded_at = con.execute("""
            select r.payment_id, r.created_at from square_refunds r join square_payments p using (payment_id)
            where r.created_at <= ? and p.created_at < r.created_at - interval 1 day
            order by r.created_at desc limit 1""", [sandbox.clock]).fetchone()
    since = refunded_at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    changed = walk(client, "/v2/payments", "payments",
                   {"begin_time": ALL, "updated_at_begin_time": since, "sort_field": "UPDATED_AT", "sort_order": "ASC"})
    assert changed and all(p["updated_at"] >= since for p in changed)
    assert [p["updated_at"] for p in changed] == sorted(p["updated_at"] for p in changed)
    refunded = next(p for p in changed if p["id"] == payment_id)  # an old payment, refunded lately
    assert refunded["created_at"] < since and refunded["refunded_money"]["amount"] > 0
    before = len(walk(client, "/v2/payments", "payments", {"begin_time": ALL}))
    sandbox.advance(hours=24 * 7)
    after = len(walk(client, "/v2/payments", "payments", {"begin_time": ALL}))
    assert after > before


def test_search_orders_rules_and_returns(square, sandbox):
    running, client = square
    loc = client.get("/v2/locations").json()["locations"][0]["id"]
    missing = client.post("/v2/orders/search", json={"query": {}})
    assert missing.status_code == 400 and missing.json()["errors"][0]["field"] == "location_ids"
    mismatch = client.post("/v2/orders/search", json={"location_ids": [loc], "query": {
        "filter": {"date_time_filter": {"updated_at": {"start_at": "2025-06-01T00:00:00Z"}}},
        "sort": {"sort_field": "CREATED_AT"}}})
    assert mismatch.status_code == 400
    body = {"location_ids": [loc], "limit": 50, "query": {
        "filter": {"date_time_filter": {"updated_at": {"start_at": "2025-01-01T00:00:00Z"}}},
        "sort": {"sort_field": "UPDATED_AT", "sort_order": "ASC"}}}
    orders = walk(client, "/v2/orders/search", "orders", method="POST", body=body)
    with sandbox.connect() as con:
        (truth,) = con.execute("select count(*) from square_orders where created_at <= ?", [sandbox.clock]).fetchone()
    assert len(orders) == truth
    sales = [o for o in orders if "line_items" in o]
    returns = [o for o in orders if "returns" in o]
    assert sales and returns
    for o in sales:
        assert o["state"] == "COMPLETED" and o["taxes"][0]["type"] == "INCLUSIVE" and o["taxes"][0]["percentage"] == "20"
        assert sum(li["total_money"]["amount"] for li in o["line_items"]) == o["total_money"]["amount"]
        assert sum(t["amount_money"]["amount"] for t in o["tenders"]) == o["total_money"]["amount"]
        for li in o["line_items"]:
            assert isinstance(li["quantity"], str) and is_money(li["base_price_money"])
            assert li["total_money"]["amount"] == li["gross_sales_money"]["amount"] - li["total_discount_money"]["amount"]
    by_id = {o["id"]: o for o in sales}
    for r in returns:
        ret, = r["returns"]
        source = by_id[ret["source_order_id"]]
        uids = {li["uid"] for li in source["line_items"]}
        assert all(rl["source_line_item_uid"] in uids for rl in ret["return_line_items"])
    # a filter not given in the next call is kept: the cursor freezes the query
    first = client.post("/v2/orders/search", json=body).json()
    again = client.post("/v2/orders/search", json={"cursor": first["cursor"], "limit": 50}).json()
    assert {o["id"] for o in again["orders"]}.isdisjoint({o["id"] for o in first["orders"]})
    entries = client.post("/v2/orders/search", json={**body, "return_entries": True}).json()["order_entries"]
    assert set(entries[0]) == {"order_id", "location_id", "version"}


def test_payouts_and_entries_tie_out(square, sandbox):
    _, client = square
    payouts = walk(client, "/v2/payouts", "payouts", {"begin_time": ALL, "limit": 25})
    assert payouts and {p["status"] for p in payouts} <= {"SENT", "PAID"}
    for p in payouts[:40]:
        assert re.match(r"^po_[0-9a-f-]{36}$", p["id"]) and re.match(r"^\d{4}-\d{2}-\d{2}$", p["arrival_date"])
        entries = walk(client, f"/v2/payouts/{p['id']}/payout-entries", "payout_entries", {"limit": 3})
        assert entries and sum(e["net_amount_money"]["amount"] for e in entries) == p["amount_money"]["amount"]
        for e in entries:
            assert e["net_amount_money"]["amount"] == e["gross_amount_money"]["amount"] - e["fee_amount_money"]["amount"]
            assert e["type"] in ("CHARGE", "REFUND")
            assert ("type_charge_details" in e) == (e["type"] == "CHARGE")
    assert client.get("/v2/payouts/po_00000000-0000-4000-8000-000000000000/payout-entries").status_code == 404
    paid = walk(client, "/v2/payouts", "payouts", {"begin_time": ALL, "status": "PAID"})
    assert all(p["status"] == "PAID" for p in paid) and len(paid) < len(payouts) + 1


def test_rate_limit_answers_squares_429(sandbox, start_emulator):
    running = start_emulator(SquareEmulator, sandbox, time_scale=1.0)
    headers = {"Authorization": f"Bearer {running.emulator.access_token}"}
    with httpx.Client(base_url=running.url, headers=headers) as client:
        statuses = [client.get("/v2/locations") for _ in range(40)]
    refused = [r for r in statuses if r.status_code == 429]
    assert refused and running.emulator.counters["over_limit"] == len(refused)
    assert refused[0].json() == {"errors": [{"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED",
                                              "detail": "Rate limit exceeded. Reduce the rate of requests."}]}


def test_official_sdk_lists_through_the_emulator(square, sandbox):
    square_sdk = pytest.importorskip("square")
    running, _ = square
    sdk = square_sdk.Square(token=running.emulator.access_token, base_url=running.url, version="2025-08-20")
    payments = list(sdk.payments.list(begin_time=ALL, limit=50))
    with sandbox.connect() as con:
        (truth,) = con.execute("select count(*) from square_payments where created_at <= ?", [sandbox.clock]).fetchone()
    assert len(payments) == truth
    assert all(isinstance(p.amount_money.amount, int) for p in payments)
    payout = next(iter(sdk.payouts.list(begin_time=ALL, limit=5)))
    entries = list(sdk.payouts.list_entries(payout.id, limit=2))
    assert sum(e.net_amount_money.amount for e in entries) == payout.amount_money.amount
    assert sdk.payouts.get(payout.id).payout.arrival_date == payout.arrival_date
    loc = next(iter(sdk.locations.list().locations)).id
    found = sdk.orders.search(location_ids=[loc], limit=20, query={"sort": {"sort_field": "CREATED_AT"}})
    assert found.orders and found.cursor
    refunds = list(sdk.refunds.list(begin_time=ALL))
    assert refunds and all(r.payment_id for r in refunds)
