"""The Magento emulator speaks Magento's REST V1: Bearer integration token, searchCriteria filters
(OR within a group, AND across groups) with sortOrders, pageSize/currentPage and total_count,
JSON-number money with base twins and a negative order-level discount, UTC dates without offset,
order states as of the clock, credit memos, and a 429 with Retry-After over the CDN's limit."""
from __future__ import annotations

import json
import re
from decimal import Decimal

import httpx
import pytest

from finance_pipeline.platforms.magento.emulator import HOST_LIMIT, MagentoEmulator

DATE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def crit(*filters, sort=None, size=None, page=None, group_each=False):
    q = {}
    for n, (field, value, cond) in enumerate(filters):
        g, f = (n, 0) if group_each else (0, n)
        q[f"searchCriteria[filter_groups][{g}][filters][{f}][field]"] = field
        q[f"searchCriteria[filter_groups][{g}][filters][{f}][value]"] = value
        q[f"searchCriteria[filter_groups][{g}][filters][{f}][condition_type]"] = cond
    for n, (field, direction) in enumerate(sort or []):
        q[f"searchCriteria[sortOrders][{n}][field]"] = field
        q[f"searchCriteria[sortOrders][{n}][direction]"] = direction
    if size is not None:
        q["searchCriteria[pageSize]"] = size
    if page is not None:
        q["searchCriteria[currentPage]"] = page
    return q


@pytest.fixture
def store(sandbox, start_emulator):
    running = start_emulator(MagentoEmulator, sandbox, time_scale=30)
    client = httpx.Client(base_url=running.url + "/rest/default/V1",
                          headers={"Authorization": f"Bearer {running.emulator.access_token}"}, timeout=10)
    yield running, client
    client.close()


def decimal_json(resp):
    return json.loads(resp.content, parse_float=Decimal)


def world(sandbox, sql):
    con = sandbox.connect()
    try:
        return con.execute(sql, {"c": sandbox.clock}).fetchall()
    finally:
        con.close()


def test_bearer_auth_and_store_codes(store):
    running, client = store
    assert client.get("/orders", params=crit(size=1)).status_code == 200
    assert httpx.get(running.url + "/rest/V1/orders", params=crit(size=1),
                     headers={"Authorization": f"Bearer {running.emulator.access_token}"}).status_code == 200
    denied = httpx.get(running.url + "/rest/default/V1/orders", headers={"Authorization": "Bearer nope"})
    assert denied.status_code == 401
    assert denied.json() == {"message": "The consumer isn't authorized to access %resources.",
                             "parameters": {"resources": "Magento_Sales::actions_view"}}
    assert httpx.get(running.url + "/rest/nosuchstore/V1/orders",
                     headers={"Authorization": f"Bearer {running.emulator.access_token}"}).status_code == 400


def test_order_shape_money_numbers_and_dates(store, sandbox):
    _, client = store
    body = decimal_json(client.get("/orders", params=crit(("state", "complete", "eq"), size=5)))
    assert body["total_count"] == world(sandbox, """select count(*) from magento_orders o where created_at <= $c
        and shipped_at <= $c and canceled_at is null and not exists (select 1 from magento_creditmemos m
        where m.order_id = o.entity_id and m.created_at <= $c
        group by m.order_id having sum(grand_total) >= o.grand_total)""")[0][0]
    o = body["items"][0]
    for name in ("grand_total", "base_grand_total", "tax_amount", "subtotal", "discount_amount", "total_paid"):
        assert isinstance(o[name], (int, Decimal)), name
    assert o["discount_amount"] <= 0 and all(i["discount_amount"] >= 0 for i in o["items"])
    assert DATE.match(o["created_at"]) and DATE.match(o["updated_at"])
    assert o["base_currency_code"] == o["order_currency_code"] == "GBP" and o["base_to_order_rate"] == 1
    assert o["grand_total"] == o["subtotal_incl_tax"] + o["discount_amount"] + o["shipping_incl_tax"]
    assert o["tax_amount"] == sum(i["tax_amount"] for i in o["items"]) + o["shipping_tax_amount"]
    assert o["payment"]["amount_paid"] == o["grand_total"] and o["payment"]["last_trans_id"]
    assert o["extension_attributes"]["applied_taxes"][0]["percent"] == 20
    assert body["search_criteria"]["filter_groups"][0]["filters"][0] == {
        "field": "state", "value": "complete", "condition_type": "eq"}


def test_search_criteria_groups_sorting_and_paging(store, sandbox):
    _, client = store
    total = client.get("/orders", params=crit(size=1)).json()["total_count"]
    assert total == world(sandbox, "select count(*) from magento_orders where created_at <= $c")[0][0]
    ids, page = [], 1
    while True:
        body = client.get("/orders", params=crit(sort=[("entity_id", "ASC")], size=40, page=page)).json()
        ids += [o["entity_id"] for o in body["items"]]
        if page * 40 >= body["total_count"]:
            break
        page += 1
    assert ids == sorted(ids) and len(set(ids)) == total
    past_end = client.get("/orders", params=crit(size=40, page=page + 1)).json()
    assert past_end["items"] == [] and past_end["total_count"] == total
    # OR inside a group, AND across groups
    either = client.get("/orders", params=crit(("state", "canceled", "eq"), ("state", "closed", "eq"))).json()
    assert {o["state"] for o in either["items"]} == {"canceled", "closed"}
    both = client.get("/orders", params=crit(("state", "canceled", "eq"), ("state", "closed", "eq"),
                                             group_each=True)).json()
    assert both["total_count"] == 0
    mark = sorted(o["updated_at"] for o in client.get("/orders", params=crit(size=500)).json()["items"])[-5]
    gteq = client.get("/orders", params=crit(("updated_at", mark, "gteq"), sort=[("updated_at", "ASC")])).json()
    gt = client.get("/orders", params=crit(("updated_at", mark, "gt"))).json()
    assert gteq["items"][0]["updated_at"] == mark and gt["total_count"] < gteq["total_count"]
    assert client.get("/orders", params=crit(("nonsense", "1", "eq"))).status_code == 400


def test_states_follow_the_clock_and_credit_memos(store, sandbox):
    running, client = store
    (eid, created, paid), = world(sandbox, """select entity_id, created_at, paid_at from magento_orders
        where created_at > $c and paid_at > created_at + interval 10 second order by created_at limit 1""")
    assert client.get(f"/orders/{eid}").status_code == 404
    sandbox.advance((created - sandbox.clock).total_seconds() / 3600 + 1 / 3600)
    assert client.get(f"/orders/{eid}").json()["state"] == "pending_payment"
    sandbox.advance((paid - sandbox.clock).total_seconds() / 3600 + 1 / 3600)
    assert client.get(f"/orders/{eid}").json()["state"] == "processing"
    memos = decimal_json(client.get("/creditmemos", params=crit(size=100)))
    assert memos["total_count"] == world(sandbox, "select count(*) from magento_creditmemos where created_at <= $c")[0][0]
    m = next(x for x in memos["items"] if x["items"])
    order = decimal_json(client.get(f"/orders/{m['order_id']}"))
    assert m["items"][0]["order_item_id"] in [i["item_id"] for i in order["items"]]
    assert order["total_refunded"] >= m["grand_total"] and order["updated_at"] >= m["created_at"]
    assert m["grand_total"] == m["subtotal_incl_tax"] + m["discount_amount"] + m["shipping_incl_tax"]
    canceled = client.get("/orders", params=crit(("state", "canceled", "eq"))).json()["items"]
    assert canceled and all(o["total_paid"] == 0 and "amount_paid" not in o["payment"] for o in canceled)


def test_cdn_rate_limit_answers_429(sandbox, start_emulator):
    running = start_emulator(MagentoEmulator, sandbox, time_scale=1)
    headers = {"Authorization": f"Bearer {running.emulator.access_token}"}
    with httpx.Client(base_url=running.url + "/rest/V1", headers=headers) as c:
        statuses = [c.get("/orders", params=crit(size=1)) for _ in range(HOST_LIMIT + 2)]
    refused = [r for r in statuses if r.status_code == 429]
    assert len(refused) == 2 and float(refused[0].headers["retry-after"]) > 0
    assert running.emulator.counters["over_limit"] == 2
