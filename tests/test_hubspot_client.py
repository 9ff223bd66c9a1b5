"""HubSpot client and emulator: bearer auth, list paging by `after`, the search API's incremental
filter and its 10,000-result cap (re-windowed), the account's limits and their headers, property
strings and Decimal amounts, and the official SDK (hubspot-api-client) against the emulator."""
from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from finance_pipeline.http.client import ApiError
from finance_pipeline.ingest.arrow import parse_timestamp
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.hubspot import DEAL_PROPERTIES
from finance_pipeline.platforms.hubspot.client import list_pages, make_client, search_pages
from finance_pipeline.platforms.hubspot.emulator import HubSpotEmulator
from finance_pipeline.platforms.hubspot.oracle_pipeline import deals_as_of


@pytest.fixture
def hub(settings, sandbox, start_emulator):
    running = start_emulator(HubSpotEmulator, sandbox, time_scale=settings.time_scale)
    conn = Connection("hubspot", running.url, running.emulator.credentials(), settings)
    client = make_client(conn)
    yield running, client
    client.close()


def truth(sandbox) -> dict[str, dict]:
    with sandbox.connect() as con:
        return {d["deal_id"]: d for d in deals_as_of(con, "hubspot", sandbox.clock)}


def test_list_pages_every_live_deal_as_of_the_clock(hub, sandbox):
    running, client = hub
    pages = list(list_pages(client, DEAL_PROPERTIES))
    deals = {d["id"]: d for page in pages for d in page}
    want = truth(sandbox)
    assert len(pages) > 1 and all(len(p) <= 100 for p in pages)
    assert set(deals) == set(want)
    for deal_id, w in want.items():
        props = deals[deal_id]["properties"]
        assert Decimal(props["amount"]) == w["amount"] and props["amount"].count(".") == 1
        assert props["dealstage"] == w["stage"] and props["deal_currency_code"] == w["currency"]
        assert props["invoice_number"] == w["invoice_number"]
        assert props["hs_is_closed_won"] == str(w["stage"] == "closedwon").lower()
        assert parse_timestamp(props["hs_lastmodifieddate"]) == w["valid_from"].replace(
            microsecond=w["valid_from"].microsecond // 1000 * 1000)
    assert running.emulator.counters["over_limit"] == 0


def test_properties_are_strings_and_limits_are_checked(hub):
    running, client = hub
    body = client.get_json("/crm/v3/objects/deals", params={"limit": 3})
    assert len(body["results"]) == 3 and body["paging"]["next"]["after"]
    assert all(isinstance(v, str) for r in body["results"] for v in r["properties"].values() if v is not None)
    assert set(body["results"][0]["properties"]) >= {"dealname", "amount", "dealstage", "hs_object_id"}
    with pytest.raises(ApiError) as err:
        client.get_json("/crm/v3/objects/deals", params={"limit": 101})
    assert err.value.status == 400 and "VALIDATION_ERROR" in err.value.body
    with pytest.raises(ApiError) as err:
        client.request("POST", "/crm/v3/objects/deals/search", json={"limit": 201}, idempotent=True)
    assert err.value.status == 400


def test_a_wrong_token_is_refused(hub, settings):
    running, _ = hub
    bad = make_client(Connection("hubspot", running.url, {"access_token": "pat-eu1-nope"}, settings))
    with pytest.raises(ApiError) as err:
        bad.get_json("/crm/v3/objects/deals")
    assert err.value.status == 401 and "INVALID_AUTHENTICATION" in err.value.body
    bad.close()


def test_search_is_incremental_and_ascending(hub, sandbox):
    running, client = hub
    since = sandbox.clock - timedelta(days=20)
    found = [d for page in search_pages(client, DEAL_PROPERTIES, since) for d in page]
    want = {k for k, d in truth(sandbox).items() if d["valid_from"] >= since.replace(microsecond=0)}
    assert {d["id"] for d in found} == want and want
    stamps = [d["properties"]["hs_lastmodifieddate"] for d in found]
    assert stamps == sorted(stamps)


def test_search_past_the_result_cap_rewindows(hub, sandbox):
    running, client = hub
    running.emulator.search_cap = 60  # the real cap is 10,000: a small world needs a small one
    found = [d for page in search_pages(client, DEAL_PROPERTIES, None, limit=20) for d in page]
    ids = [d["id"] for d in found]
    assert len(ids) == len(set(ids)) and set(ids) == set(truth(sandbox))
    assert len(ids) > 60
    # asking past the cap directly is refused
    with pytest.raises(ApiError) as err:
        client.request("POST", "/crm/v3/objects/deals/search", json={"limit": 20, "after": "60"}, idempotent=True)
    assert err.value.status == 400


def test_burst_and_search_limits(settings, sandbox, start_emulator):
    running = start_emulator(HubSpotEmulator, sandbox, time_scale=0.05)  # windows of 200 s and 20 s
    token = running.emulator.credentials()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=running.url, headers=headers) as http:
        searches = [http.post("/crm/v3/objects/deals/search", json={"limit": 1}) for _ in range(6)]
        assert [r.status_code for r in searches[:5]] == [200] * 5
        assert searches[5].status_code == 429 and searches[5].json()["policyName"] == "SECONDLY"
        assert "x-hubspot-ratelimit-max" not in searches[0].headers  # search answers carry no rate headers
        answers = [http.get("/crm/v3/objects/deals", params={"limit": 1}) for _ in range(100)]
    ok = [r for r in answers if r.status_code == 200]
    refused = [r for r in answers if r.status_code == 429]
    assert ok and refused and len(ok) + 6 == 100  # 100 per 10 s, the six searches included
    assert ok[0].headers["x-hubspot-ratelimit-max"] == "100"
    assert ok[0].headers["x-hubspot-ratelimit-interval-milliseconds"] == "10000"
    assert int(ok[-1].headers["x-hubspot-ratelimit-remaining"]) == 0
    body = refused[0].json()
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert running.emulator.counters["over_limit"] == len(refused) + 1


def test_the_client_stays_under_the_limits(settings, sandbox, start_emulator):
    slow = dataclasses.replace(settings, time_scale=5.0)
    running = start_emulator(HubSpotEmulator, sandbox, time_scale=slow.time_scale)
    client = make_client(Connection("hubspot", running.url, running.emulator.credentials(), slow))
    running.emulator.search_cap = 40
    for _ in range(2):
        assert sum(len(p) for p in search_pages(client, DEAL_PROPERTIES, None, limit=10)) == len(truth(sandbox))
    client.close()
    assert running.emulator.counters["over_limit"] == 0


def test_official_sdk_lists_and_searches_deals(hub, sandbox):
    hubspot = pytest.importorskip("hubspot")
    from hubspot.crm.deals import Filter, FilterGroup, PublicObjectSearchRequest

    running, _ = hub
    sdk = hubspot.Client.create(access_token=running.emulator.credentials()["access_token"], host=running.url)
    deals = sdk.crm.deals.get_all(properties=["dealname", "amount", "dealstage", "invoice_number"])
    want = truth(sandbox)
    assert {d.id for d in deals} == set(want)
    some = next(d for d in deals if d.properties.get("invoice_number"))
    assert some.properties["invoice_number"] == want[some.id]["invoice_number"]
    since = int((sandbox.clock - timedelta(days=30)).timestamp() * 1000)
    page = sdk.crm.deals.search_api.do_search(public_object_search_request=PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[Filter(property_name="hs_lastmodifieddate", operator="GTE",
                                                   value=str(since))])],
        sorts=["hs_lastmodifieddate"], properties=["amount"], limit=50))
    assert page.total == sum(1 for d in want.values() if d["valid_from"].timestamp() * 1000 >= since)
    assert len(page.results) == min(50, page.total)
