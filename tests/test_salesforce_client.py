"""Salesforce client and emulator: client-credentials token with `instance_url`, a new session
after INVALID_SESSION_ID, SOQL (the subset) with `nextRecordsUrl` batches and batchSize,
queryAll with deleted rows, errors as JSON arrays, `Sforce-Limit-Info` and the daily allocation
(403 REQUEST_LIMIT_EXCEEDED), exact Decimal amounts."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
import pytest

from finance_pipeline.http.client import ApiError
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.salesforce.client import live_connection, make_client, query_pages
from finance_pipeline.platforms.salesforce.emulator import SfError, parse_soql
from finance_pipeline.platforms.salesforce.emulator import SalesforceEmulator
from finance_pipeline.platforms.hubspot.oracle_pipeline import deals_as_of
from finance_pipeline.settings import SettingsError

ALL = "SELECT Id, Amount, StageName, IsWon, IsDeleted, SystemModstamp, Invoice_Number__c FROM Opportunity"


@pytest.fixture
def sf(settings, sandbox, start_emulator):
    running = start_emulator(SalesforceEmulator, sandbox, time_scale=settings.time_scale)
    client = make_client(Connection("salesforce", running.url, running.emulator.credentials(), settings))
    yield running, client
    client.close()


def truth(sandbox) -> dict[str, dict]:
    with sandbox.connect() as con:
        return {d["deal_id"]: d for d in deals_as_of(con, "salesforce", sandbox.clock)}


def deleted(sandbox) -> set[str]:
    with sandbox.connect() as con:
        return {r[0] for r in con.execute("select deal_id from salesforce_deals where deleted_at <= ?",
                                          [sandbox.clock]).fetchall()}


def records(client, soql, **kw) -> list[dict]:
    return [r for body in query_pages(client, soql, **kw) for r in body["records"]]


def test_query_batches_follow_next_records_url(sf, sandbox):
    running, client = sf
    running.emulator.min_batch = 50  # Salesforce's minimum is 200; the small world has fewer rows
    bodies = list(query_pages(client, ALL + " ORDER BY SystemModstamp, Id", batch_size=50))
    want = truth(sandbox)
    assert len(bodies) > 1 and all(b["totalSize"] == len(want) for b in bodies)
    assert [b["done"] for b in bodies] == [False] * (len(bodies) - 1) + [True]
    assert bodies[0]["nextRecordsUrl"].startswith("/services/data/v62.0/query/01g")
    assert all(len(b["records"]) == 50 for b in bodies[:-1])
    got = {r["Id"]: r for b in bodies for r in b["records"]}
    assert set(got) == set(want)
    for deal_id, w in want.items():
        r = got[deal_id]
        assert isinstance(r["Amount"], Decimal) and r["Amount"] == w["amount"]
        assert r["StageName"] == w["stage"] and r["IsWon"] == (w["stage"] == "Closed Won")
        assert r["Invoice_Number__c"] == w["invoice_number"] and r["attributes"]["type"] == "Opportunity"
        assert len(r["Id"]) == 18 and r["Id"].startswith("006")
    stamps = [r["SystemModstamp"] for b in bodies for r in b["records"]]
    assert stamps == sorted(stamps) and stamps[0].endswith("+0000")


def test_where_limit_and_query_all(sf, sandbox):
    running, client = sf
    since = sandbox.clock - timedelta(days=15)
    recent = records(client, ALL + f" WHERE SystemModstamp >= {since.strftime('%Y-%m-%dT%H:%M:%SZ')} "
                                   "AND IsWon = true ORDER BY SystemModstamp")
    want = {k for k, d in truth(sandbox).items() if d["valid_from"] >= since and d["stage"] == "Closed Won"}
    assert {r["Id"] for r in recent} == want and want
    assert len(records(client, ALL + " WHERE StageName = 'Closed Lost' LIMIT 7")) == 7
    gone = deleted(sandbox)
    everything = records(client, ALL, include_deleted=True)
    assert {r["Id"] for r in everything if r["IsDeleted"]} == gone and gone
    assert not gone & {r["Id"] for r in records(client, ALL)}


def test_errors_are_salesforce_json_arrays(sf):
    running, client = sf
    for soql, code in (("SELECT Id FROM Opportunity WHERE", "MALFORMED_QUERY"),
                       ("SELECT Id, Bogus__c FROM Opportunity", "INVALID_FIELD"),
                       ("SELECT Id FROM Account", "INVALID_TYPE"),
                       ("SELECT Id FROM Opportunity WHERE SystemModstamp > '2026-01-01T00:00:00Z'", "INVALID_FIELD")):
        with pytest.raises(ApiError) as err:
            list(query_pages(client, soql))
        assert err.value.status == 400 and f'"errorCode":"{code}"' in err.value.body.replace(" ", "")
    with pytest.raises(ApiError) as err:
        client.get_json("/services/data/v62.0/query/01gdeadbeef-2000")
    assert "INVALID_QUERY_LOCATOR" in err.value.body
    with pytest.raises(SfError):
        parse_soql("DELETE FROM Opportunity")


def test_expired_session_gets_a_new_token(sf, sandbox):
    running, client = sf
    assert records(client, "SELECT Id FROM Opportunity LIMIT 3")
    assert client.auth.sessions == 1 and client.auth.instance_url == running.url
    running.emulator.expire_sessions()
    assert len(records(client, "SELECT Id FROM Opportunity LIMIT 3")) == 3
    assert client.auth.sessions == 2
    with httpx.Client() as http:
        r = http.get(f"{running.url}/services/data/v62.0/query", params={"q": "SELECT Id FROM Opportunity"},
                     headers={"Authorization": "Bearer 00Dnope"})
        assert r.status_code == 401 and r.json() == [{"message": "Session expired or invalid",
                                                      "errorCode": "INVALID_SESSION_ID"}]
        bad = http.post(f"{running.url}/services/oauth2/token", data={"grant_type": "client_credentials",
                                                                     "client_id": "x", "client_secret": "y"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_client"
        creds = running.emulator.credentials()
        basic = http.post(f"{running.url}/services/oauth2/token", data={"grant_type": "client_credentials"},
                          auth=(creds["client_id"], creds["client_secret"]))
        assert basic.status_code == 200 and basic.json()["instance_url"] == running.url


def test_daily_allocation_and_limit_header(sf):
    running, client = sf
    running.emulator.daily_limit = running.emulator.api_used + 3
    records(client, "SELECT Id FROM Opportunity LIMIT 1")
    used, limit = client.auth.api_usage
    assert limit == running.emulator.daily_limit and used == running.emulator.api_used
    records(client, "SELECT Id FROM Opportunity LIMIT 1")
    records(client, "SELECT Id FROM Opportunity LIMIT 1")
    with pytest.raises(ApiError) as err:
        records(client, "SELECT Id FROM Opportunity LIMIT 1")
    assert err.value.status == 403 and "REQUEST_LIMIT_EXCEEDED" in err.value.body
    assert client.stats["status_403"] == 1  # not retried: the allocation is a rolling day


def test_batch_size_is_clamped(sf):
    running, client = sf
    bodies = list(query_pages(client, "SELECT Id FROM Opportunity", batch_size=5))
    assert len(bodies[0]["records"]) == min(200, bodies[0]["totalSize"])


def test_live_connection_names_the_missing_variable(settings, monkeypatch):
    for name in ("SALESFORCE_INSTANCE_URL", "SALESFORCE_CLIENT_ID", "SALESFORCE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SettingsError, match="SALESFORCE_INSTANCE_URL"):
        live_connection(settings)
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com")
    with pytest.raises(SettingsError, match="SALESFORCE_CLIENT_ID"):
        live_connection(settings)
