"""The QuickBooks emulator speaks QBO: OAuth refresh with rotation, Fault envelopes and codes,
requestid replays, SyncToken, query paging, CDC with deletes, minorversion, throttling; and the
webhook signature."""
from __future__ import annotations

import base64
from decimal import Decimal as D
import hashlib
import hmac

import httpx
import orjson

from finance_pipeline.platforms.quickbooks import webhooks
from finance_pipeline.platforms.quickbooks.client import QboFault, make_client, query, query_pages, write
from quickbooks_fixtures import QboEnv, qbo_env, start_qbo  # noqa: F401


def _customer(client, name="Bath Interiors (1)", currency="GBP"):
    return write(client, "Customer", {"DisplayName": name, "CurrencyRef": {"value": currency}}, f"c-{name}")


def _invoice(customer_id, number="INV-1", qty=2, price="49.50", code="2"):
    from decimal import Decimal

    amount = (Decimal(qty) * Decimal(price)).quantize(Decimal("0.01"))
    return {"CustomerRef": {"value": customer_id}, "DocNumber": number, "TxnDate": "2025-06-01",
            "DueDate": "2025-07-01", "Line": [{"DetailType": "SalesItemLineDetail", "Amount": amount,
                                              "SalesItemLineDetail": {"ItemRef": {"value": "11"}, "Qty": qty,
                                                                      "UnitPrice": Decimal(price),
                                                                      "TaxCodeRef": {"value": code}}}]}


def test_auth_rotation_and_faults(qbo_env):
    creds = qbo_env.emulator.credentials()
    url = creds["token_url"]
    basic = base64.b64encode(f"{creds['client_id']}:{creds['client_secret']}".encode()).decode()
    first = httpx.post(url, data={"grant_type": "refresh_token", "refresh_token": creds["refresh_token"]},
                       headers={"Authorization": f"Basic {basic}"}).json()
    assert first["token_type"] == "bearer" and first["expires_in"] == 3600
    assert first["refresh_token"] != creds["refresh_token"] and first["x_refresh_token_expires_in"] > 0
    bad = httpx.post(url, data={"grant_type": "refresh_token", "refresh_token": "nope"},
                     headers={"Authorization": f"Basic {basic}"})
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    api = creds["api_url"]
    denied = httpx.get(f"{api}/query", params={"query": "SELECT * FROM Invoice"},
                       headers={"Authorization": "Bearer wrong"})
    assert denied.status_code == 401 and denied.json()["Fault"]["type"] == "AuthenticationFault"
    assert denied.json()["Fault"]["Error"][0]["code"] == "3200"
    ok = httpx.get(f"{api}/query", params={"query": "SELECT * FROM Invoice", "minorversion": "75"},
                   headers={"Authorization": f"Bearer {first['access_token']}"})
    assert ok.status_code == 200 and ok.json()["QueryResponse"] == {}  # empty: no array key
    other_realm = httpx.get(api.rsplit("/", 1)[0] + "/123", params={"query": "SELECT * FROM Invoice"},
                            headers={"Authorization": f"Bearer {first['access_token']}"})
    assert other_realm.status_code in (403, 404)
    too_new = httpx.get(f"{api}/query", params={"query": "SELECT * FROM Invoice", "minorversion": "999"},
                        headers={"Authorization": f"Bearer {first['access_token']}"})
    assert too_new.status_code == 400


def test_validation_codes_requestid_and_synctoken(qbo_env):
    client = make_client(qbo_env.connection())
    try:
        cust = _customer(client)
        assert cust["Id"] and cust["SyncToken"] == "0" and cust["CurrencyRef"]["value"] == "GBP"
        try:
            write(client, "Customer", {"DisplayName": "bath interiors (1)"}, "c-dupe")
            raise AssertionError("duplicate name accepted")
        except QboFault as exc:
            assert exc.codes == {"6240"}
        inv = write(client, "Invoice", _invoice(cust["Id"]), "i-1")
        assert inv["TotalAmt"] == D("118.80") and inv["TxnTaxDetail"]["TotalTax"] == D("19.80") and inv["Balance"] == D("118.80")
        assert inv["MetaData"]["CreateTime"].endswith(("+00:00", "+01:00"))
        # the same requestid replays the first answer: no second invoice even with another body
        again = write(client, "Invoice", _invoice(cust["Id"], number="INV-2"), "i-1")
        assert again["Id"] == inv["Id"] and len(qbo_env.emulator.docs("Invoice")) == 1
        for body, code in ((_invoice(cust["Id"]), "6140"),  # duplicate DocNumber
                           (_invoice(cust["Id"], number="INV-123456789012345678901"), "2050"),
                           (_invoice("999999", number="INV-3"), "2500"),
                           (_invoice(cust["Id"], number="INV-4", code=None), "6000"),
                           ({**_invoice(cust["Id"], number="INV-5"), "Line": [{
                               "DetailType": "SalesItemLineDetail", "Amount": 10,
                               "SalesItemLineDetail": {"ItemRef": {"value": "11"}, "Qty": 3, "UnitPrice": 4,
                                                       "TaxCodeRef": {"value": "2"}}}]}, "6070"),
                           ({"DocNumber": "INV-6", "Line": []}, "2020")):
            if code == "6000":
                body["Line"][0]["SalesItemLineDetail"].pop("TaxCodeRef")
            try:
                write(client, "Invoice", body, f"bad-{code}")
                raise AssertionError(f"accepted, expected {code}")
            except QboFault as exc:
                assert code in exc.codes, exc.message
        # update: current SyncToken works and increments; a stale one is 5010
        updated = write(client, "Invoice", {**_invoice(cust["Id"], qty=3), "Id": inv["Id"], "SyncToken": "0"}, "u-1")
        assert updated["SyncToken"] == "1" and updated["TotalAmt"] == D("178.20")
        try:
            write(client, "Invoice", {**_invoice(cust["Id"], qty=4), "Id": inv["Id"], "SyncToken": "0"}, "u-2")
            raise AssertionError("stale SyncToken accepted")
        except QboFault as exc:
            assert exc.codes == {"5010"}
        # a payment reduces the balance and bumps the invoice's SyncToken; more than the balance is refused
        pay = {"CustomerRef": {"value": cust["Id"]}, "TotalAmt": 100, "TxnDate": "2025-06-10",
               "Line": [{"Amount": 100, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}]}
        write(client, "Payment", pay, "p-1")
        doc = qbo_env.emulator.docs("Invoice")[0]
        assert doc["Balance"] == D("78.20") and doc["SyncToken"] == "2"
        try:
            write(client, "Payment", {**pay, "TotalAmt": 100}, "p-2")
            raise AssertionError("overpayment of the balance accepted")
        except QboFault as exc:
            assert "6000" in exc.codes
    finally:
        client.close()


def test_query_paging_and_cdc_with_deletes(qbo_env):
    client = make_client(qbo_env.connection())
    try:
        cust = _customer(client)
        for n in range(25):
            write(client, "Invoice", _invoice(cust["Id"], number=f"INV-{n:03d}"), f"i-{n}")
        pages = list(query_pages(client, "Invoice", page_size=10))
        assert [len(p) for p in pages] == [10, 10, 5]
        assert len({r["Id"] for p in pages for r in p}) == 25
        assert query(client, "SELECT COUNT(*) FROM Invoice")["totalCount"] == 25
        some = query(client, "SELECT * FROM Invoice WHERE DocNumber IN ('INV-003', 'INV-007') ORDERBY DocNumber DESC")
        assert [r["DocNumber"] for r in some["Invoice"]] == ["INV-007", "INV-003"]
        victim = some["Invoice"][0]
        write(client, "Invoice", {"Id": victim["Id"], "SyncToken": victim["SyncToken"]}, "d-1", operation="delete")
        assert query(client, "SELECT COUNT(*) FROM Invoice")["totalCount"] == 24  # deleted: invisible to /query
        since = pages[0][0]["MetaData"]["CreateTime"]
        cdc = client.get_json("cdc", params={"entities": "Invoice,Payment", "changedSince": since,
                                             "minorversion": 75})
        parts = cdc["CDCResponse"][0]["QueryResponse"]
        invoices = parts[0]["Invoice"]
        assert len(invoices) == 25 and "Payment" not in parts[1]
        deleted = [i for i in invoices if i.get("status") == "Deleted"]
        assert [d["Id"] for d in deleted] == [victim["Id"]]
        # a field list is a projection: sparse objects holding those fields only, paged like the rest
        ids = query(client, "SELECT Id FROM Invoice ORDERBY Id STARTPOSITION 21 MAXRESULTS 10")["Invoice"]
        assert ids == [{"domain": "QBO", "sparse": True, "Id": r["Id"]}
                       for r in sorted((r for p in pages for r in p if r["Id"] != victim["Id"]),
                                       key=lambda r: int(r["Id"]))[20:]]
        numbers = query(client, "SELECT DocNumber, MetaData.LastUpdatedTime FROM Invoice WHERE DocNumber = 'INV-003'")
        assert numbers["Invoice"] == [{"domain": "QBO", "sparse": True, "DocNumber": "INV-003",
                                       "MetaData": {"LastUpdatedTime": some["Invoice"][1]["MetaData"]["LastUpdatedTime"]}}]
        try:
            query(client, "SELECT * FROM Invoice WHERE DocNumber = 'a' OR DocNumber = 'b'")
            raise AssertionError("OR accepted")
        except Exception as exc:  # noqa: BLE001 - a 400 QueryParserError
            assert "400" in str(exc) or "OR" in str(exc)
    finally:
        client.close()


def test_throttling_answers_003001(tmp_path):
    from conftest import make_settings

    settings = make_settings(tmp_path, time_scale=1.0)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    running = start_qbo(settings)
    try:
        env = QboEnv(settings, running)
        client = make_client(env.connection())
        client.get_json("query", params={"query": "SELECT COUNT(*) FROM Invoice"})  # fetch a token
        token = client.auth.headers()["Authorization"]
        client.close()
        refused = 0
        with httpx.Client() as raw:
            for _ in range(30):  # far more than 10 per second, with no client-side limiter
                r = raw.get(f"{running.url}/v3/company/{running.emulator.store.realm_id}/query",
                            params={"query": "SELECT COUNT(*) FROM Invoice"}, headers={"Authorization": token})
                if r.status_code == 429:
                    refused += 1
                    assert r.json()["Fault"]["Error"][0]["code"] == "003001"
                    assert "retry-after" not in r.headers
        assert refused > 0 and running.emulator.stats()["counters"]["over_limit"] == refused
    finally:
        running.stop()


def test_webhook_signature_both_formats(qbo_env):
    secret = qbo_env.emulator.credentials()["verifier_token"]
    legacy = orjson.dumps({"eventNotifications": [{"realmId": "9130", "dataChangeEvent": {"entities": [
        {"name": "Invoice", "id": "145", "operation": "Update", "lastUpdated": "2025-06-01T10:20:30-0700"}]}}]})
    cloud = orjson.dumps([{"specversion": "1.0", "id": "0b0f", "source": "intuit", "type": "qbo.invoice.created.v1",
                           "time": "2026-01-01T00:00:00Z", "intuitentityid": "145", "intuitaccountid": "9130",
                           "data": {}}])
    for body in (legacy, cloud):
        sig = qbo_env.emulator.sign_webhook(body)
        assert sig == base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        assert webhooks.verify({"Intuit-Signature": sig}, body, secret)
        assert not webhooks.verify({"intuit-signature": sig}, body + b" ", secret)
        assert not webhooks.verify({"intuit-signature": sig}, body, "other")
        assert not webhooks.verify({}, body, secret)
    assert webhooks.entity_events(orjson.loads(cloud))[0] == {
        "realm_id": "9130", "entity": "invoice", "id": "145", "operation": "created", "event_id": "0b0f"}
    assert webhooks.entity_events(orjson.loads(legacy))[0]["operation"] == "update"


def test_live_mode_names_the_missing_variables(monkeypatch):
    import pytest

    from finance_pipeline.platforms.quickbooks.client import live_connection
    from finance_pipeline.settings import Settings, SettingsError

    for name in ("QBO_CLIENT_ID", "QBO_CLIENT_SECRET", "QBO_REALM_ID", "QBO_REFRESH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QBO_CLIENT_ID", "abc")
    with pytest.raises(SettingsError) as err:
        live_connection(Settings(mode="live"))
    assert "QBO_CLIENT_SECRET" in str(err.value) and "QBO_REALM_ID" in str(err.value)
    assert "QBO_CLIENT_ID," not in str(err.value).split("(missing)")[0]
