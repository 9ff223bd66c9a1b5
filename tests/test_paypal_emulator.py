"""The PayPal emulator speaks PayPal: OAuth client credentials, Transaction Search's 31-day
windows, page/page_size/total_pages, `+0000` dates and negative fee strings, the reporting delay,
Orders v2 with items/captures/refunds, PayPal error bodies and 429 RATE_LIMIT_REACHED."""
from __future__ import annotations

import re
import shutil
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from finance_pipeline.http.ratelimit import TokenBucket
from finance_pipeline.platforms.paypal.emulator import PayPalEmulator, rfc3339
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox

PPTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")


def _token(r) -> str:
    em = r.emulator
    resp = httpx.post(f"{r.url}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                      auth=(em.client_id, em.client_secret))
    assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer" and resp.json()["expires_in"] == 32400
    return resp.json()["access_token"]


@pytest.fixture(scope="module")
def world(small_world_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("paypal-emulator")
    shutil.copytree(small_world_dir / "sandbox", root / "sandbox")
    return Sandbox(root / "sandbox")


@pytest.fixture(scope="module")
def running(world):
    r = serve(PayPalEmulator(world, EmulatorConfig(time_scale=30)))
    yield r
    r.stop()


@pytest.fixture(scope="module")
def api(running):
    with httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {_token(running)}"}) as c:
        yield c


def search(api, start, end, **params):
    return api.get("/v1/reporting/transactions", params={"start_date": rfc3339(start), "end_date": rfc3339(end), **params})


def test_oauth(running):
    em = running.emulator
    assert httpx.post(f"{running.url}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                      auth=(em.client_id, "wrong")).status_code == 401
    assert httpx.post(f"{running.url}/v1/oauth2/token", data={"grant_type": "password"},
                      auth=(em.client_id, em.client_secret)).status_code == 400
    assert httpx.get(f"{running.url}/v2/checkout/orders/X").status_code == 401


def test_transaction_search_wire_format_and_paging(api, world):
    end = world.clock
    start = end - timedelta(days=31)
    first = search(api, start, end, page_size=3, fields="all").json()
    assert first["total_pages"] == -(-first["total_items"] // 3) and first["page"] == 1
    assert PPTIME.match(first["last_refreshed_datetime"]) and PPTIME.match(first["start_date"])
    rows = list(first["transaction_details"])
    for page in range(2, first["total_pages"] + 1):
        rows += search(api, start, end, page_size=3, page=page, fields="all").json()["transaction_details"]
    ids = [(r["transaction_info"]["transaction_id"], r["transaction_info"]["transaction_event_code"]) for r in rows]
    assert len(ids) == len(set(ids)) == first["total_items"] > 3
    capture = next(r["transaction_info"] for r in rows if r["transaction_info"]["transaction_event_code"] == "T0006")
    assert PPTIME.match(capture["transaction_initiation_date"])
    assert capture["transaction_amount"]["currency_code"] == "GBP" and Decimal(capture["fee_amount"]["value"]) < 0
    assert capture["paypal_reference_id_type"] == "ODR" and len(capture["transaction_id"]) == 17
    assert "payer_info" in rows[0]
    assert "payer_info" not in search(api, start, end).json()["transaction_details"][0]
    with world.connect() as con:
        (n,) = con.execute("select count(*) from paypal_transactions where initiated_at between ? and ? and visible_at <= ?",
                           [start, end, world.clock]).fetchone()
    assert n == first["total_items"]


def test_window_and_parameter_errors(api, world):
    r = search(api, world.clock - timedelta(days=32), world.clock)
    assert r.status_code == 400 and r.json()["name"] == "INVALID_REQUEST"
    assert r.json()["details"][0]["issue"] == "INVALID_DATE_RANGE" and r.json()["debug_id"]
    assert api.get("/v1/reporting/transactions", params={"start_date": rfc3339(world.clock)}).status_code == 400
    assert search(api, world.clock - timedelta(days=1), world.clock, page_size=501).status_code == 400
    assert api.get("/v1/reporting/transactions", params={"start_date": "2025-12-01", "end_date": "2025-12-02"}).status_code == 400
    # an offset with a colon is accepted as well as Z
    ok = api.get("/v1/reporting/transactions", params={"start_date": "2025-12-01T00:00:00+00:00",
                                                      "end_date": "2025-12-20T00:00:00-05:00"})
    assert ok.status_code == 200


def test_reporting_delay(api, world):
    with world.connect() as con:
        (txn_id, at, seen) = con.execute("""select txn_id, initiated_at, visible_at from paypal_transactions
            where initiated_at > ? order by initiated_at limit 1""", [world.clock]).fetchone()
    assert seen > at
    clock = world.clock
    try:
        world.advance(((at - clock).total_seconds() + 1) / 3600)  # the moment it happened: not listed yet
        body = search(api, at - timedelta(hours=1), at + timedelta(hours=1), transaction_id=txn_id).json()
        assert body["total_items"] == 0
        world.advance((seen - at).total_seconds() / 3600)  # after PayPal's delay: there
        body = search(api, at - timedelta(hours=1), at + timedelta(hours=1), transaction_id=txn_id).json()
        assert body["total_items"] == 1
    finally:
        world.advance(-(world.clock - clock).total_seconds() / 3600)


def test_order_detail(api, world):
    with world.connect() as con:
        oid, total, n_lines = con.execute("""select o.order_id, o.total, count(*) from paypal_orders o
            join paypal_order_lines l using (order_id) join paypal_refunds r using (order_id)
            where r.created_at < ? group by all limit 1""", [world.clock]).fetchone()
    order = api.get(f"/v2/checkout/orders/{oid}").json()
    unit = order["purchase_units"][0]
    assert order["status"] == "COMPLETED" and order["intent"] == "CAPTURE"
    assert unit["amount"] == {"currency_code": "GBP", "value": str(total), "breakdown": unit["amount"]["breakdown"]}
    items = unit["items"]
    assert len(items) == n_lines and all(isinstance(i["quantity"], str) for i in items)
    item_total = sum(Decimal(i["unit_amount"]["value"]) * int(i["quantity"]) for i in items)
    tax_total = sum(Decimal(i["tax"]["value"]) * int(i["quantity"]) for i in items)
    assert Decimal(unit["amount"]["breakdown"]["item_total"]["value"]) == item_total
    assert Decimal(unit["amount"]["breakdown"]["tax_total"]["value"]) == tax_total
    assert item_total + tax_total == total
    capture = unit["payments"]["captures"][0]
    srb = capture["seller_receivable_breakdown"]
    assert Decimal(srb["gross_amount"]["value"]) - Decimal(srb["paypal_fee"]["value"]) == Decimal(srb["net_amount"]["value"])
    assert capture["status"] in ("REFUNDED", "PARTIALLY_REFUNDED") and unit["payments"]["refunds"]
    cap = api.get(f"/v2/payments/captures/{capture['id']}").json()
    assert cap["supplementary_data"]["related_ids"]["order_id"] == oid
    missing = api.get("/v2/checkout/orders/NOSUCHORDER00000")
    assert missing.status_code == 404 and missing.json()["name"] == "RESOURCE_NOT_FOUND"


def test_rate_limit_answers_429(world):
    emulator = PayPalEmulator(world, EmulatorConfig(time_scale=30))
    emulator.bucket = TokenBucket(0.001, 3)  # a tiny allowance, so the test does not depend on timing
    r = serve(emulator)
    try:
        headers = {"Authorization": f"Bearer {_token(r)}"}
        codes = [httpx.get(f"{r.url}/v2/checkout/orders/X", headers=headers).status_code for _ in range(4)]
        refused = httpx.get(f"{r.url}/v2/checkout/orders/X", headers=headers)
    finally:
        r.stop()
    assert codes == [404, 404, 404, 429] and refused.status_code == 429
    assert refused.json()["name"] == "RATE_LIMIT_REACHED" and float(refused.headers["retry-after"]) > 0
    assert r.emulator.counters["over_limit"] >= 2
