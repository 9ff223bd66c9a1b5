"""Lightspeed Retail (R-Series) emulator fidelity: OAuth with rotating tokens, the account path,
XML-born JSON (strings, single objects), load_relations, query operators, `@attributes.next`
cursors, the leaky bucket's headers and 429, and as-of-clock rendering (edits move timeStamp)."""
from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from finance_pipeline.platforms.lightspeed import SALE_RELATIONS
from finance_pipeline.platforms.lightspeed.emulator import LightspeedEmulator

RELATIONS = json.dumps(SALE_RELATIONS)


def token(running) -> tuple[str, str]:
    creds = running.emulator.credentials()
    resp = httpx.post(creds["token_url"], data={"grant_type": "refresh_token", "refresh_token": creds["refresh_token"],
                                                "client_id": creds["client_id"], "client_secret": creds["client_secret"]})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    return body["access_token"], body["refresh_token"]


@pytest.fixture
def lightspeed(sandbox, start_emulator):
    running = start_emulator(LightspeedEmulator, sandbox, time_scale=30.0)
    access, _ = token(running)
    client = httpx.Client(base_url=f"{running.url}/API/V3/Account/{running.emulator.account_id}",
                          headers={"Authorization": f"Bearer {access}"}, timeout=60)  # a far advance rebuilds the world
    yield running, client
    client.close()


def walk(client, params):
    sales, resp = [], client.get("/Sale.json", params=params)
    while True:
        assert resp.status_code == 200, resp.text
        body = resp.json()
        page = body.get("Sale", [])
        sales.extend(page if isinstance(page, list) else [page])
        if not body["@attributes"]["next"]:
            return sales
        resp = client.get(body["@attributes"]["next"])


def test_refresh_tokens_rotate_and_old_ones_die(sandbox, start_emulator):
    running = start_emulator(LightspeedEmulator, sandbox, time_scale=30.0)
    creds = running.emulator.credentials()
    access, refresh = token(running)
    spent = httpx.post(creds["token_url"], data={"grant_type": "refresh_token", "refresh_token": creds["refresh_token"],
                                                 "client_id": creds["client_id"], "client_secret": creds["client_secret"]})
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"
    wrong = httpx.post(creds["token_url"], data={"grant_type": "refresh_token", "refresh_token": refresh,
                                                 "client_id": creds["client_id"], "client_secret": "nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    url = f"{running.url}/API/V3/Account.json"
    assert httpx.get(url, headers={"Authorization": f"Bearer {access}"}).json()["Account"]["accountID"] == \
        running.emulator.account_id
    running.emulator.expire_access_tokens()
    expired = httpx.get(url, headers={"Authorization": f"Bearer {access}"})
    assert expired.status_code == 401 and expired.json()["httpCode"] == "401"


def test_sales_are_xml_born_json(lightspeed, sandbox):
    running, client = lightspeed
    sales = walk(client, {"load_relations": RELATIONS, "limit": 25, "sort": "saleID"})
    with sandbox.connect() as con:
        (n,) = con.execute("select count(*) from lightspeed_sales where created_at <= ?", [sandbox.clock]).fetchone()
    assert len(sales) == n and len({s["saleID"] for s in sales}) == n
    for sale in sales:
        assert all(isinstance(v, str) for v in sale.values() if not isinstance(v, dict)), sale
        assert sale["completed"] in ("true", "false") and sale["isTaxInclusive"] == "true"
        Decimal(sale["calcTotal"])
        lines = sale["SaleLines"]["SaleLine"]
        lines = lines if isinstance(lines, list) else [lines]
        assert sum(Decimal(l["calcTotal"]) for l in lines) == Decimal(sale["calcTotal"])
        assert all(l["Item"]["customSku"] for l in lines)
        if sale["voided"] == "true":
            assert "SalePayments" not in sale
    one_line = [s for s in sales if isinstance(s["SaleLines"]["SaleLine"], dict)]
    assert one_line, "a sale with a single line renders it as an object"
    returns = [s for s in sales if Decimal(s["calcTotal"]) < 0]
    assert returns and all(
        int((s["SaleLines"]["SaleLine"] if isinstance(s["SaleLines"]["SaleLine"], dict)
             else s["SaleLines"]["SaleLine"][0])["parentSaleLineID"]) > 0 for s in returns)
    single = client.get("/Sale.json", params={"saleID": sales[0]["saleID"]}).json()
    assert isinstance(single["Sale"], dict) and "SaleLines" not in single["Sale"]  # no relations asked
    assert client.get("/Sale.json", params={"saleID": "1"}).json() == {"@attributes": {"next": "", "previous": ""}}


def test_filters_sort_and_bad_requests(lightspeed):
    _, client = lightspeed
    since = "2025-12-01T00:00:00+00:00"
    recent = walk(client, {"timeStamp": f">=,{since}", "sort": "timeStamp"})
    assert recent and all(s["timeStamp"] >= since for s in recent)
    assert [s["timeStamp"] for s in recent] == sorted(s["timeStamp"] for s in recent)
    between = walk(client, {"timeStamp": "><,2025-06-01T00:00:00+00:00,2025-06-30T23:59:59+00:00"})
    assert between and all("2025-06" in s["timeStamp"] for s in between)
    assert client.get("/Sale.json", params={"load_relations": "SaleLines"}).status_code == 400
    assert client.get("/Sale.json", params={"load_relations": '["Nope"]'}).status_code == 400
    assert client.get("/Sale.json", params={"limit": 101}).status_code == 400
    assert client.get("/Sale.json", params={"offset": 100}).status_code == 400
    other = client.get(str(client.base_url).rstrip("/").replace("/Account/", "/Account/9") + "/Sale.json")
    assert other.status_code == 401


def test_bucket_headers_and_429(sandbox, start_emulator):
    running = start_emulator(LightspeedEmulator, sandbox, time_scale=1.0)
    access, _ = token(running)
    url = f"{running.url}/API/V3/Account/{running.emulator.account_id}/Sale.json"
    with httpx.Client(headers={"Authorization": f"Bearer {access}"}) as client:
        answers = [client.get(url, params={"limit": 1}) for _ in range(70)]
    ok = answers[0]
    assert ok.headers["x-ls-api-drip-rate"] == "1" and ok.headers["x-ls-api-bucket-level"].endswith("/60")
    refused = [a for a in answers if a.status_code == 429]
    assert refused and float(refused[0].headers["retry-after"]) > 0
    assert refused[0].json()["httpCode"] == "429"
    assert running.emulator.counters["over_limit"] == len(refused)


def test_as_of_clock_edits_move_the_timestamp(lightspeed, sandbox):
    _, client = lightspeed
    with sandbox.connect() as con:
        sale_id, completed_at, edited_at, late = con.execute(
            """select sale_id, completed_at, edited_at, late_customer_id from lightspeed_sales
               where edited_at > ? order by edited_at limit 1""", [sandbox.clock]).fetchone()
    hours = lambda at: (at - sandbox.clock).total_seconds() / 3600  # noqa: E731
    sandbox.advance(hours=max(hours(completed_at), 0) + 1)
    before = client.get(f"/Sale/{sale_id}.json").json()["Sale"]
    assert before["customerID"] != late and before["completed"] == "true"
    sandbox.advance(hours=hours(edited_at) + 1)
    after = client.get(f"/Sale/{sale_id}.json").json()["Sale"]
    assert after["customerID"] == late and after["timeStamp"] > before["timeStamp"]
    assert after["createTime"] == before["createTime"]
