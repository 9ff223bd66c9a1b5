"""Business Central client against the emulator: Entra ID client credentials through MSAL (the real
authority mapped to the emulator), server-driven OData paging, the incremental filter, BC's error
shape and validation, ETags, and the per-user limits (429 + Retry-After, 5 requests at a time)."""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from decimal import Decimal

import httpx
import pytest

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.dynamics365 import client as bc
from finance_pipeline.platforms.dynamics365.emulator import DynamicsEmulator
from finance_pipeline.platforms.dynamics365.source import odata_pages
from finance_pipeline.settings import SettingsError


@pytest.fixture
def bc_env(settings, sandbox, start_emulator):
    running = start_emulator(DynamicsEmulator, sandbox, time_scale=settings.time_scale)
    connection = Connection("dynamics365", running.url, running.emulator.credentials(), settings)
    client = bc.make_client(connection)
    yield settings, sandbox, running, connection, client
    bc.close(client)


def _truth(sandbox, sql: str):
    con = sandbox.connect()
    try:
        return con.execute(sql, {"c": sandbox.clock}).fetchone()[0]
    finally:
        con.close()


def test_token_through_msal_then_paged_invoices_with_lines(bc_env):
    settings, sandbox, running, connection, client = bc_env
    pages = list(odata_pages(client, "salesInvoices", None, size=7, params={"$expand": "salesInvoiceLines"}))
    invoices = [i for page in pages for i in page]
    assert len(pages) >= 3 and all(len(p) <= 7 for p in pages)
    assert len(invoices) == len({i["id"] for i in invoices}) == _truth(
        sandbox, "select count(*) from dynamics365_invoices where created_at <= $c")
    assert running.emulator.entra.issued == 1  # one token, cached by MSAL for every page
    sample = invoices[0]
    assert isinstance(sample["totalAmountIncludingTax"], Decimal) and sample["currencyCode"] == "USD"
    assert sample["number"].startswith("USI-") and sample["@odata.etag"].startswith('W/"')
    lines = sample["salesInvoiceLines"]
    assert sum(ln["amountExcludingTax"] for ln in lines) == sample["totalAmountExcludingTax"]
    assert {i["status"] for i in invoices} >= {"Paid", "Open"}
    times = [i["lastModifiedDateTime"] for i in invoices]
    assert times == sorted(times)  # $orderby=lastModifiedDateTime asc


def test_incremental_filter_and_prefer_header(bc_env):
    settings, sandbox, running, connection, client = bc_env
    since = datetime(2025, 9, 1, tzinfo=timezone.utc)
    newer = [p for page in odata_pages(client, "customerPayments", since, size=1000) for p in page]
    assert newer and all(p["lastModifiedDateTime"] > "2025-09-01T00:00:00" for p in newer)
    everything = [p for page in odata_pages(client, "customerPayments", None, size=1000) for p in page]
    assert len(everything) > len(newer)
    resp = client.get("customerPayments", headers={"Prefer": "odata.maxpagesize=5"})
    assert resp.headers["Preference-Applied"] == "odata.maxpagesize=5" and "@odata.nextLink" in resp.json()
    with pytest.raises(bc.Refused) as err:
        bc.call(client, "GET", "salesInvoices", params={"$filter": "nosuchField eq 'x'"})
    assert err.value.status == 400 and err.value.code == "BadRequest"


def test_wrong_secret_is_refused_by_entra_id(bc_env, settings):
    _, _, running, connection, _ = bc_env
    creds = {**running.emulator.credentials(), "client_secret": "not-it"}
    client = bc.make_client(Connection("dynamics365", running.url, creds, settings))
    try:
        with pytest.raises(SettingsError, match="AADSTS7000215"):
            client.get_json("customers")
    finally:
        bc.close(client)
    raw = httpx.get(f"{bc.api_root(connection)}/companies")
    assert raw.status_code == 401 and raw.json()["error"]["code"] == "Authentication_InvalidCredentials"


def test_writes_are_validated_like_business_central(bc_env):
    _, _, running, _, client = bc_env
    with pytest.raises(bc.Refused, match="A customerNumber or a customerId must be provided"):
        bc.call(client, "POST", "salesOrders", json={"externalDocumentNumber": "X-1"})
    with pytest.raises(bc.Refused) as err:
        bc.call(client, "POST", "salesOrders", json={"customerNumber": "NOPE"})
    assert err.value.code == "Application_DialogException" and "(Customer)" in err.value.message
    customer = bc.call(client, "GET", "customers").json()["value"][0]["number"]
    with pytest.raises(bc.Refused, match="Currency"):
        bc.call(client, "POST", "salesOrders", json={"customerNumber": customer, "currencyCode": "CHF"})
    with pytest.raises(bc.Refused) as err:
        bc.call(client, "POST", "salesOrders", json={"customerNumber": customer, "salesOrderLines": [
            {"lineType": "Gadget", "quantity": 1}]})
    assert err.value.code == "BadRequest"
    with pytest.raises(bc.Refused) as err:
        bc.call(client, "POST", "customers", json={"number": customer, "displayName": "again"})
    assert err.value.code == "Internal_EntityWithSameKeyExists"
    order = bc.call(client, "POST", "salesOrders", json={
        "number": "SO-T1", "externalDocumentNumber": "INV-T1", "customerNumber": customer, "orderDate": "2025-12-01",
        "salesOrderLines": [{"lineType": "Account", "lineObjectNumber": "40250", "quantity": 1, "unitPrice": 60,
                             "taxCode": "VAT20"}]}).json()
    assert order["totalAmountIncludingTax"] == Decimal("72.00") and order["salesOrderLines"][0]["totalTaxAmount"] == 12
    with pytest.raises(bc.Refused) as err:
        bc.call(client, "POST", "salesOrders", json={"number": "SO-T1", "customerNumber": customer})
    assert err.value.code == "Internal_EntityWithSameKeyExists"
    path = f"salesOrders({order['id']})"
    with pytest.raises(bc.Refused, match="If-Match"):
        bc.call(client, "PATCH", path, json={"orderDate": "2025-12-02"})
    bc.call(client, "PATCH", path, json={"orderDate": "2025-12-02"}, headers={"If-Match": order["@odata.etag"]})
    with pytest.raises(bc.Refused) as err:  # the ETag read before the first PATCH is stale now
        bc.call(client, "DELETE", path, headers={"If-Match": order["@odata.etag"]}, expect_json=False)
    assert err.value.status == 409 and err.value.code == "Request_EntityChanged"
    found = bc.call(client, "GET", "salesOrders", params={"$filter": "externalDocumentNumber eq 'INV-T1'"}).json()
    assert [o["orderDate"] for o in found["value"]] == ["2025-12-02"]


def test_limits_429_with_retry_after_and_five_at_a_time(settings, sandbox, start_emulator):
    running = start_emulator(DynamicsEmulator, sandbox, time_scale=settings.time_scale)
    emulator = running.emulator
    emulator.window.limit = 3  # a tiny window so the test reaches it
    connection = Connection("dynamics365", running.url, emulator.credentials(), settings)
    raw = bc.make_client(connection)
    token = raw.auth.headers()
    try:
        answers = [httpx.get(f"{raw.base_url}/currencies", headers=dict(token)) for _ in range(5)]
        refused = [a for a in answers if a.status_code == 429]
        assert refused and refused[0].headers["Retry-After"].isdigit()
        assert refused[0].json()["error"]["code"] == "Application_TooManyRequests"
        emulator.window.limit = 10_000
        client = bc.make_client(connection)
        threads = [threading.Thread(target=lambda: client.get_json("salesInvoices")) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 1 <= emulator.max_processing_seen <= 5
        bc.close(client)
    finally:
        bc.close(raw)


def test_live_connection_names_what_is_missing(monkeypatch):
    from finance_pipeline.settings import Settings

    for name in bc.REQUIRED_ENV + ("BC_ENVIRONMENT",):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BC_TENANT_ID", "t")
    with pytest.raises(SettingsError, match="BC_CLIENT_ID, BC_CLIENT_SECRET, BC_COMPANY_ID"):
        bc.live_connection(Settings(mode="live"))
    for name, value in (("BC_CLIENT_ID", "c"), ("BC_CLIENT_SECRET", "s3cr3t-value"), ("BC_COMPANY_ID", "co")):
        monkeypatch.setenv(name, value)
    conn = bc.live_connection(Settings(mode="live"))
    assert conn.get("environment") == "production"
    assert bc.api_root(conn) == "https://api.businesscentral.dynamics.com/v2.0/t/production/api/v2.0"
    assert "s3cr3t-value" not in repr(conn.credentials)
