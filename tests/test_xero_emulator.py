"""The Xero emulator's fidelity: auth, validation errors in Xero's shape, money and dates on the wire,
idempotency, listing filters and paging, rate-limit answers, shared state, and the official SDK."""
from __future__ import annotations

import json
import re
import threading
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from xero_fixtures import XeroEnv, build_marts, start_xero, xero_env  # noqa: F401  (xero_env is a fixture)
from finance_pipeline.platforms.xero import webhooks
from finance_pipeline.platforms.xero.publish import publish_trade_invoices
from finance_pipeline.platforms.xero.wire import loads


class Api:
    """A bare HTTP client with a fresh access token (no limiter: these tests poke the server)."""

    def __init__(self, env: XeroEnv) -> None:
        self.creds = env.emulator.credentials()
        token = httpx.post(self.creds["token_url"], auth=(self.creds["client_id"], self.creds["client_secret"]),
                           data={"grant_type": "refresh_token", "refresh_token": self.creds["refresh_token"]}).json()
        self.headers = {"Authorization": f"Bearer {token['access_token']}", "xero-tenant-id": self.creds["tenant_id"],
                        "Accept": "application/json"}
        self.http = httpx.Client(base_url=self.creds["api_url"] + "/", headers=self.headers, timeout=10)

    def get(self, path: str, **kw) -> httpx.Response:
        return self.http.get(path, **kw)

    def send(self, method: str, path: str, body, *, params=None, headers=None) -> httpx.Response:
        return self.http.request(method, path, content=json.dumps(body), params=params,
                                 headers={"Content-Type": "application/json", **(headers or {})})

    def contact(self, name: str, number: str) -> str:
        resp = self.send("PUT", "Contacts", {"Contacts": [{"Name": name, "ContactNumber": number}]})
        assert resp.status_code == 200, resp.text
        return resp.json()["Contacts"][0]["ContactID"]


def invoice(contact_id: str, number: str, **over) -> dict:
    body = {"Type": "ACCREC", "Contact": {"ContactID": contact_id}, "Date": "2025-06-01", "DueDate": "2025-07-01",
            "InvoiceNumber": number, "Reference": f"#{number}", "CurrencyCode": "GBP", "Status": "AUTHORISED",
            "LineAmountTypes": "Exclusive",
            "LineItems": [{"Description": "Linen curtain 140x220", "Quantity": 2, "UnitAmount": 49.50,
                           "AccountCode": "200", "TaxType": "OUTPUT2"}]}
    body.update(over)
    return body


@pytest.fixture
def api(xero_env) -> Api:
    return Api(xero_env)


def test_auth_and_tenant_are_required(xero_env, api):
    url = api.creds["api_url"] + "/Invoices"
    assert httpx.get(url, headers={"xero-tenant-id": api.creds["tenant_id"]}).status_code == 401
    bad = httpx.get(url, headers={**api.headers, "Authorization": "Bearer eyJ.forged.token"})
    assert bad.status_code == 401 and bad.json()["Title"] == "Unauthorized"
    assert httpx.get(url, headers={**api.headers, "xero-tenant-id": "00000000-0000-0000-0000-000000000001"}
                     ).status_code == 403
    assert httpx.get(url, headers={k: v for k, v in api.headers.items() if k != "xero-tenant-id"}).status_code == 403
    conns = httpx.get(api.creds["api_url"].replace("/api.xro/2.0", "/connections"),
                      headers={"Authorization": api.headers["Authorization"]}).json()
    assert conns[0]["tenantId"] == api.creds["tenant_id"] and conns[0]["tenantType"] == "ORGANISATION"


def test_validation_errors_have_xeros_shape(api):
    cid = api.contact("Bath Interiors 1", "C-1")
    assert api.send("PUT", "Invoices", {"Invoices": [invoice(cid, "INV-1")]}).status_code == 200
    batch = {"Invoices": [
        invoice(cid, "INV-2", LineItems=[{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "999",
                                          "TaxType": "OUTPUT2"}]),
        invoice(cid, "INV-1"),  # duplicate number (PUT only creates)
        invoice("5b4c6a3e-0000-4c1e-9d44-1234567890ab", "INV-3"),  # unknown contact
        invoice(cid, "INV-4"),  # fine
    ]}
    per_element = api.send("PUT", "Invoices", batch, params={"summarizeErrors": "false"})
    assert per_element.status_code == 200
    elements = per_element.json()["Invoices"]
    assert [e["StatusAttributeString"] for e in elements] == ["ERROR", "ERROR", "ERROR", "OK"]
    messages = [[v["Message"] for v in e.get("ValidationErrors", [])] for e in elements]
    assert messages[0] == ["Account code '999' is not a valid code for this document."]
    assert messages[1] == ["Invoice # must be unique."]
    assert "does not exist" in messages[2][0]
    assert elements[0]["InvoiceID"] == "00000000-0000-0000-0000-000000000000" and elements[0]["HasErrors"]

    batch = {"Invoices": [invoice(cid, "INV-5"), invoice(cid, "INV-6", CurrencyCode="JPY")]}
    summarised = api.send("PUT", "Invoices", batch)
    assert summarised.status_code == 400
    body = summarised.json()
    assert (body["ErrorNumber"], body["Type"], body["Message"]) == (10, "ValidationException",
                                                                   "A validation exception occurred")
    assert body["Elements"][0]["ValidationErrors"] == [{"Message": "Organisation is not subscribed to currency JPY"}]
    numbers = {i["InvoiceNumber"] for i in api.get("Invoices").json()["Invoices"]}
    assert numbers == {"INV-1", "INV-4", "INV-5"}  # like Xero, the valid element of a failed batch was saved


@pytest.mark.parametrize("change, message", [
    ({"LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "090"}]},
     "Account code '090' is not a valid code for this document."),
    ({"LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200", "TaxType": "INPUT2"}]},
     "The TaxType code 'INPUT2' cannot be used with account code '200'."),
    ({"LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200", "TaxType": "GST10"}]},
     "does not exist"),
    ({"DueDate": "2025-05-01"}, "Due Date must not be earlier than the invoice Date"),
    ({"DueDate": None}, "Due Date is required"),
    ({"LineItems": [{"Description": "x", "Quantity": 2, "UnitAmount": 5, "AccountCode": "200", "LineAmount": 11}]},
     "does not match the expected line total"),
    ({"Contact": {}}, "A Contact must be specified"),
])
def test_more_validation_rules(api, change, message):
    cid = api.contact("Lyon Drapery 2", "C-2")
    resp = api.send("POST", "Invoices", {"Invoices": [invoice(cid, "INV-9", **change)]},
                    params={"summarizeErrors": "false"})
    errors = [v["Message"] for v in resp.json()["Invoices"][0]["ValidationErrors"]]
    assert any(message in e for e in errors), errors


def test_contacts_names_are_unique_and_findable(api):
    cid = api.contact("Cork Hotels 3", "C-3")
    dup = api.send("PUT", "Contacts", {"Contacts": [{"Name": "cork hotels 3"}]}, params={"summarizeErrors": "false"})
    assert dup.json()["Contacts"][0]["ValidationErrors"][0]["Message"].startswith(
        "The contact name cork hotels 3 is already assigned to another contact.")
    bad_email = api.send("PUT", "Contacts", {"Contacts": [{"Name": "X", "EmailAddress": "nope"}]})
    assert bad_email.status_code == 400
    found = api.get("Contacts", params={"where": 'ContactNumber=="C-3" OR Name=="Nobody"'}).json()["Contacts"]
    assert [c["ContactID"] for c in found] == [cid]
    assert api.get(f"Contacts/{cid}").json()["Contacts"][0]["Name"] == "Cork Hotels 3"
    upd = api.send("POST", "Contacts", {"Contacts": [{"ContactNumber": "C-3", "EmailAddress": "ap@cork.example"}]})
    assert upd.json()["Contacts"][0]["ContactID"] == cid  # POST matched the ContactNumber: an update
    assert api.get("Contacts", params={"where": 'Name=="CORK HOTELS 3"'}).json()["Contacts"][0]["EmailAddress"] == \
        "ap@cork.example"


def test_totals_money_and_dates_on_the_wire(api):
    cid = api.contact("Perth Living 4", "C-4")
    body = invoice(cid, "INV-10", LineItems=[
        {"Description": "Velvet (per 10 cm)", "Quantity": 125, "UnitAmount": 0.9875, "DiscountAmount": 6.17,
         "AccountCode": "200", "TaxType": "OUTPUT2"},  # 123.4375 - 6.17 = 117.27 (unitdp=4)
        {"Description": "Delivery", "Quantity": 1, "UnitAmount": 25, "AccountCode": "260", "TaxType": "OUTPUT2",
         "TaxAmount": 5.01},  # supplied tax is kept
        {"Description": "Export sample", "Quantity": 3, "UnitAmount": 19.99, "AccountCode": "200",
         "TaxType": "ZERORATEDOUTPUT"},
    ])
    resp = api.send("PUT", "Invoices", {"Invoices": [body]}, params={"unitdp": "4"})
    assert resp.status_code == 200, resp.text
    raw = resp.text
    assert '"SubTotal":202.24' in raw and '"TotalTax":28.46' in raw and '"Total":230.70' in raw
    assert '"AmountPaid":0.00' in raw and '"UnitAmount":0.9875' in raw  # numbers, 2 dp (4 for units here)
    inv = loads(resp.content)["Invoices"][0]
    assert [line["LineAmount"] for line in inv["LineItems"]] == [Decimal("117.27"), Decimal("25.00"), Decimal("59.97")]
    assert [line["TaxAmount"] for line in inv["LineItems"]] == [Decimal("23.45"), Decimal("5.01"), Decimal("0.00")]
    assert inv["AmountDue"] == inv["Total"] == Decimal("230.70")
    assert inv["Date"] == "/Date(1748736000000+0000)/" and inv["DateString"] == "2025-06-01T00:00:00"
    assert inv["DueDateString"] == "2025-07-01T00:00:00"
    assert re.fullmatch(r"/Date\(\d{13}\+0000\)/", inv["UpdatedDateUTC"])
    two_dp = api.get(f"Invoices/{inv['InvoiceID']}").json()["Invoices"][0]
    assert two_dp["LineItems"][0]["UnitAmount"] == 0.99  # without unitdp=4 Xero shows 2 dp

    inclusive = invoice(cid, "INV-11", LineAmountTypes="Inclusive", LineItems=[
        {"Description": "Pole", "Quantity": 1, "UnitAmount": 120, "AccountCode": "200", "TaxType": "OUTPUT2"}])
    inc = loads(api.send("PUT", "Invoices", {"Invoices": [inclusive]}).content)["Invoices"][0]
    assert (inc["SubTotal"], inc["TotalTax"], inc["Total"]) == (Decimal("100.00"), Decimal("20.00"), Decimal("120.00"))


def test_idempotency_key_replays_and_conflicts(xero_env, api):
    cid = api.contact("Austin Home Store 5", "C-5")
    body = {"Invoices": [invoice(cid, "INV-20")]}
    first = api.send("POST", "Invoices", body, headers={"Idempotency-Key": "inv-INV-20-v1"})
    replay = api.send("POST", "Invoices", body, headers={"Idempotency-Key": "inv-INV-20-v1"})
    assert first.status_code == replay.status_code == 200 and first.content == replay.content
    assert len(api.get("Invoices").json()["Invoices"]) == 1
    assert xero_env.emulator.stats()["idempotent_replays"] == 1
    other = api.send("POST", "Invoices", {"Invoices": [invoice(cid, "INV-21")]},
                     headers={"Idempotency-Key": "inv-INV-20-v1"})
    assert other.status_code == 400 and "different request" in other.json()["Message"]
    too_long = api.send("POST", "Invoices", body, headers={"Idempotency-Key": "k" * 129})
    assert too_long.status_code == 400
    # stored errors are replayed too
    bad = {"Invoices": [invoice(cid, "INV-22", CurrencyCode="JPY")]}
    assert api.send("POST", "Invoices", bad, headers={"Idempotency-Key": "bad-1"}).status_code == 400
    assert api.send("POST", "Invoices", bad, headers={"Idempotency-Key": "bad-1"}).status_code == 400
    xero_env.emulator.advance_clock(7 * 60)  # the window (~6 min) has passed: the key is free again
    again = api.send("POST", "Invoices", {"Invoices": [invoice(cid, "INV-21")]},
                     headers={"Idempotency-Key": "inv-INV-20-v1"})
    assert again.status_code == 200


def test_listing_filters_paging_and_incremental(api):
    cid = api.contact("Utrecht Design Studio 6", "C-6")
    other = api.contact("Hamburg Interiors 7", "C-7")
    rows = [invoice(cid if i % 2 else other, f"INV-{100 + i}", Status="AUTHORISED" if i % 3 else "DRAFT",
                    Date=(date(2025, 1, 1) + timedelta(days=i)).isoformat(),
                    DueDate=(date(2025, 2, 1) + timedelta(days=i)).isoformat())
            for i in range(30)]
    assert api.send("POST", "Invoices", {"Invoices": rows}).status_code == 200
    cut = datetime.now(timezone.utc) - timedelta(seconds=1)

    page = api.get("Invoices", params={"page": 2, "pageSize": 12}).json()
    assert page["pagination"] == {"page": 2, "pageSize": 12, "pageCount": 3, "itemCount": 30}
    assert [i["InvoiceNumber"] for i in page["Invoices"]] == [f"INV-{112 + i}" for i in range(12)]
    assert "LineItems" in page["Invoices"][0]
    assert "LineItems" not in api.get("Invoices").json()["Invoices"][0]  # no page: summaries, everything
    assert api.get("Invoices", params={"page": 1, "pageSize": 5000}).json()["pagination"]["pageSize"] == 1000

    def numbers(**params) -> list[str]:
        return [i["InvoiceNumber"] for i in api.get("Invoices", params=params).json()["Invoices"]]

    assert numbers(where='InvoiceNumber=="INV-105"') == ["INV-105"]
    assert numbers(where='Reference=="#INV-107"') == ["INV-107"]
    assert len(numbers(where='Status=="DRAFT" AND Type=="ACCREC"')) == 10
    assert numbers(where=f'Contact.ContactID==Guid("{cid}") AND Date>=DateTime(2025,01,25)') == [
        "INV-125", "INV-127", "INV-129"]
    assert numbers(InvoiceNumbers="INV-101,INV-102,INV-999") == ["INV-101", "INV-102"]
    assert len(numbers(Statuses="DRAFT,AUTHORISED")) == 30
    assert numbers(order="InvoiceNumber DESC", page=1, pageSize=2) == ["INV-129", "INV-128"]
    first_id = api.get("Invoices", params={"where": 'InvoiceNumber=="INV-100"'}).json()["Invoices"][0]["InvoiceID"]
    assert numbers(IDs=first_id) == ["INV-100"]
    assert api.get("Invoices", params={"where": 'Name.StartsWith("A")'}).status_code == 400

    later = {"If-Modified-Since": (cut + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S")}
    assert api.get("Invoices", headers=later).json()["Invoices"] == []
    since = {"If-Modified-Since": cut.strftime("%Y-%m-%dT%H:%M:%S")}
    assert len(api.get("Invoices", headers=since).json()["Invoices"]) == 30


def test_post_updates_by_number_or_id_and_voids(xero_env, api):
    cid = api.contact("Ludlow Furnishings 8", "C-8")
    created = api.send("POST", "Invoices", {"Invoices": [invoice(cid, "INV-30")]}).json()["Invoices"][0]
    time.sleep(0.005)
    changed = invoice(cid, "INV-30", LineItems=[{"Description": "Linen curtain 140x220", "Quantity": 3,
                                                 "UnitAmount": 49.50, "AccountCode": "200", "TaxType": "OUTPUT2"}])
    updated = api.send("POST", "Invoices", {"Invoices": [changed]}).json()["Invoices"][0]
    assert updated["InvoiceID"] == created["InvoiceID"] and updated["Total"] == 178.20
    assert updated["UpdatedDateUTC"] != created["UpdatedDateUTC"]
    assert api.send("PUT", "Invoices", {"Invoices": [changed]}).status_code == 400  # PUT never updates

    voided = api.send("POST", f"Invoices/{created['InvoiceID']}", {"Status": "VOIDED"}).json()["Invoices"][0]
    assert voided["Status"] == "VOIDED" and voided["AmountDue"] == 0 and voided["Total"] == 178.20
    edit = api.send("POST", "Invoices", {"Invoices": [changed]}, params={"summarizeErrors": "false"})
    assert edit.json()["Invoices"][0]["ValidationErrors"] == [
        {"Message": "Invoice not of valid status for modification"}]

    paid = api.send("POST", "Invoices", {"Invoices": [invoice(cid, "INV-31")]}).json()["Invoices"][0]
    xero_env.emulator.record_payment("INV-31", paid["Total"])
    refused = api.send("POST", f"Invoices/{paid['InvoiceID']}", {"Reference": "changed"},
                       params={"summarizeErrors": "false"}).json()["Invoices"][0]
    assert "payment" in refused["ValidationErrors"][0]["Message"]
    assert api.get("Invoices/INV-31").json()["Invoices"][0]["Status"] == "PAID"
    assert api.send("POST", "Invoices/00000000-0000-0000-0000-00000000dead", {"Status": "VOIDED"}).status_code == 404


def test_rate_limits_answer_429_with_xeros_headers(tmp_path):
    from conftest import make_settings
    settings = make_settings(tmp_path)
    running = start_xero(settings)
    running.emulator.day_limit = 90
    env = XeroEnv(settings, running)
    try:
        api = Api(env)
        ok = api.get("Organisation")
        assert ok.headers["X-MinLimit-Remaining"] == "59" and ok.headers["X-DayLimit-Remaining"] == "89"
        assert int(ok.headers["X-AppMinLimit-Remaining"]) == 9999
        statuses = [api.get("Currencies") for _ in range(70)]
        refused = [r for r in statuses if r.status_code == 429]
        assert refused and all(r.headers["X-Rate-Limit-Problem"] == "minute" for r in refused)
        assert 1 <= int(refused[0].headers["Retry-After"]) <= 2  # a scaled minute is 2 s
        time.sleep(2.2)

        running.emulator.write_delay_s = 0.5  # hold writes open to pile up concurrent calls
        results: list[httpx.Response] = []
        cid_body = [{"Contacts": [{"Name": f"Concurrent {i}"}]} for i in range(8)]
        threads = [threading.Thread(target=lambda b=b: results.append(api.send("PUT", "Contacts", b)))
                   for b in cid_body]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        problems = [r.headers.get("X-Rate-Limit-Problem") for r in results if r.status_code == 429]
        assert "concurrent" in problems and len(problems) <= 3
        running.emulator.write_delay_s = 0.0
        time.sleep(2.2)

        day = [api.get("Currencies") for _ in range(40)]
        assert day[-1].status_code == 429 and day[-1].headers["X-Rate-Limit-Problem"] == "day"
        assert running.emulator.stats()["counters"]["over_limit"] >= len(refused) + len(problems) + 1
    finally:
        running.stop()


def test_state_is_shared_between_emulator_instances(xero_env, api):
    cid = api.contact("Brighton Living 9", "C-9")
    api.send("PUT", "Invoices", {"Invoices": [invoice(cid, "INV-40")]})
    second = start_xero(xero_env.settings)  # another instance (could be another process) on the same store
    try:
        assert second.emulator.credentials()["tenant_id"] == api.creds["tenant_id"]
        resp = httpx.get(second.url + "/api.xro/2.0/Invoices", headers=api.headers)  # same token works there
        assert [i["InvoiceNumber"] for i in resp.json()["Invoices"]] == ["INV-40"]
    finally:
        second.stop()
    assert (xero_env.settings.sandbox_dir / "xero.sqlite").exists()


def test_reference_data(api):
    codes = {a["Code"]: a for a in api.get("Accounts").json()["Accounts"]}
    assert {"200", "260", "090", "610", "404"} <= set(codes) and codes["090"]["Type"] == "BANK"
    rates = {t["TaxType"]: t["EffectiveRate"] for t in api.get("TaxRates").json()["TaxRates"]}
    assert rates["OUTPUT2"] == 20 and rates["RROUTPUT"] == 5 and rates["ZERORATEDOUTPUT"] == 0
    assert {c["Code"] for c in api.get("Currencies").json()["Currencies"]} == {"GBP", "EUR", "USD", "AUD"}
    assert api.get("Organisation").json()["Organisations"][0]["BaseCurrency"] == "GBP"


def test_webhook_signatures_match_the_verifier(xero_env):
    body = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": "S0m3r4Nd0mt3xt"}
                      ).encode()
    key = xero_env.emulator.credentials()["webhook_key"]
    assert webhooks.verify({"x-xero-signature": xero_env.emulator.sign_webhook(body)}, body, key)


def test_the_official_sdk_lists_invoices_from_the_emulator(xero_env, monkeypatch):
    from xero_python.accounting import AccountingApi
    from xero_python.accounting.models import Contact, Invoice, Invoices, LineItem
    from xero_python.api_client import ApiClient, Configuration
    from xero_python.api_client.oauth2 import OAuth2Token, TokenApi

    build_marts(xero_env.warehouse, n_invoices=25)
    assert publish_trade_invoices(xero_env.settings, xero_env.connection(), xero_env.warehouse).ok
    creds = xero_env.emulator.credentials()
    monkeypatch.setattr(TokenApi, "refresh_token_url", creds["token_url"])
    stored = {"access_token": "expired", "refresh_token": creds["refresh_token"], "token_type": "Bearer",
              "scope": ["offline_access", "accounting.transactions"], "expires_in": 1800,
              "expires_at": time.time() - 60}
    stored["refresh_token"] = json.loads((xero_env.settings.secrets_dir / "xero_token.json").read_text())[
        "refresh_token"]  # continue our chain rather than forking it
    config = Configuration(oauth2_token=OAuth2Token(client_id=creds["client_id"], client_secret=creds["client_secret"]))
    sdk = ApiClient(config, pool_threads=1, oauth2_token_getter=lambda: stored,
                    oauth2_token_saver=lambda token: stored.update(token))
    accounting = AccountingApi(sdk, base_url=creds["api_url"])  # the host swap: nothing else changes

    page = accounting.get_invoices(creds["tenant_id"], page=1, page_size=100, unitdp=4)
    assert stored["access_token"] != "expired"  # the SDK refreshed through the emulator's identity endpoint
    assert page.pagination.item_count == 24 and len(page.invoices) == 24
    first = page.invoices[0]
    mart = {i["InvoiceNumber"]: i for i in xero_env.emulator.invoices()}[first.invoice_number]
    assert first.type == "ACCREC" and first.status == "AUTHORISED"
    assert first.date == date.fromisoformat(mart["Date"]) and first.due_date == date.fromisoformat(mart["DueDate"])
    assert Decimal(str(first.total)) == mart["Total"] and first.currency_code.value == mart["CurrencyCode"]
    assert len(first.line_items) == len(mart["LineItems"]) and first.line_items[0].account_code in ("200", "260")
    assert first.updated_date_utc.tzinfo is not None

    one = accounting.get_invoices(creds["tenant_id"], where=f'InvoiceNumber=="{first.invoice_number}"')
    assert [i.invoice_id for i in one.invoices] == [first.invoice_id]
    assert accounting.get_organisations(creds["tenant_id"]).organisations[0].base_currency.value == "GBP"
    assert {t.tax_type for t in accounting.get_tax_rates(creds["tenant_id"]).tax_rates} >= {"OUTPUT2", "RROUTPUT"}
    assert {a.code for a in accounting.get_accounts(creds["tenant_id"]).accounts} >= {"200", "260", "090"}
    contacts = accounting.get_contacts(creds["tenant_id"], where=f'ContactNumber=="{mart["Contact"]["ContactNumber"]}"')
    assert contacts.contacts[0].contact_id == first.contact.contact_id

    # and a write through the SDK (its MS-JSON dates and float amounts) is accepted
    new = Invoice(type="ACCREC", contact=Contact(contact_id=first.contact.contact_id), invoice_number="SDK-1",
                  date=date(2025, 6, 1), due_date=date(2025, 7, 1), status="AUTHORISED", reference="sdk",
                  line_items=[LineItem(description="Sample", quantity=2.0, unit_amount=12.5, account_code="200",
                                       tax_type="OUTPUT2")])
    made = accounting.create_invoices(creds["tenant_id"], Invoices(invoices=[new]), summarize_errors=False,
                                      idempotency_key="sdk-create-1")
    assert made.invoices[0].status_attribute_string == "OK" and made.invoices[0].total == 30.0
    assert made.invoices[0].date == date(2025, 6, 1)


def journal(**over) -> dict:
    body = {"Narration": "Gift cards spent on Shopify orders, 2025-03-04 [GC-shopify-2025-03-04]", "Date": "2025-03-04",
            "Status": "POSTED",
            "JournalLines": [{"LineAmount": 60.00, "AccountCode": "845", "TaxType": "NONE", "Description": "Cards spent"},
                             {"LineAmount": -50.00, "AccountCode": "200", "TaxType": "NONE", "Description": "Sales"},
                             {"LineAmount": -10.00, "AccountCode": "825", "TaxType": "NONE", "Description": "VAT"}]}
    body.update(over)
    return body


@pytest.mark.parametrize("change, message", [
    ({"JournalLines": [{"LineAmount": 60.00, "AccountCode": "845"}, {"LineAmount": -59.99, "AccountCode": "200"}]},
     "The total debits (60.00) must equal total credits (59.99)"),
    ({"JournalLines": [{"LineAmount": 0, "AccountCode": "845"}]}, "at least two journal lines"),
    ({"JournalLines": [{"LineAmount": 5, "AccountCode": "2400"}, {"LineAmount": -5, "AccountCode": "200"}]},
     "Account code '2400' is not a valid code"),
    ({"JournalLines": [{"LineAmount": 5, "AccountCode": "845", "TaxType": "GST10"},
                       {"LineAmount": -5, "AccountCode": "200"}]}, "does not exist"),
    ({"JournalLines": [{"AccountCode": "845"}, {"LineAmount": -5, "AccountCode": "200"}]}, "LineAmount must be specified"),
    ({"Narration": " "}, "Narration must be specified"),
    ({"Date": "2025-02-30"}, "is not a valid date"),
    ({"Status": "VOIDED"}, "is not valid for a new manual journal"),
])
def test_manual_journals_are_validated_like_xero(api, change, message):
    resp = api.send("PUT", "ManualJournals", {"ManualJournals": [journal(**change)]}, params={"summarizeErrors": "false"})
    assert resp.status_code == 200
    element = resp.json()["ManualJournals"][0]
    assert element["StatusAttributeString"] == "ERROR"
    errors = [v["Message"] for v in element["ValidationErrors"]]
    assert any(message in e for e in errors), errors
    summarized = api.send("PUT", "ManualJournals", {"ManualJournals": [journal(**change)]})
    assert summarized.status_code == 400 and summarized.json()["Type"] == "ValidationException"
    assert api.get("ManualJournals").json()["ManualJournals"] == []


def test_manual_journals_are_stored_found_edited_and_voided(xero_env, api):
    accounts = {a["Code"]: a for a in api.get("Accounts").json()["Accounts"]}
    assert accounts["845"]["Type"] == "CURRLIAB" and accounts["845"]["Class"] == "LIABILITY"
    resp = api.send("PUT", "ManualJournals", {"ManualJournals": [journal(), journal(Narration="Another [GC-x-2025-03-05]",
                                                                                   Date="2025-03-05")]})
    assert resp.status_code == 200, resp.text
    made = resp.json()["ManualJournals"]
    first = made[0]["ManualJournalID"]
    raw = api.get(f"ManualJournals/{first}").text
    assert '"LineAmount":-50.00' in raw.replace(" ", "")  # money as 2-dp JSON numbers
    got = loads(raw)["ManualJournals"][0]
    assert got["Date"] == "/Date(1741046400000+0000)/" and got["Status"] == "POSTED"
    assert got["LineAmountTypes"] == "NoTax"
    assert [(ln["AccountCode"], ln["LineAmount"], ln["TaxAmount"]) for ln in got["JournalLines"]] == [
        ("845", Decimal("60.00"), Decimal("0.00")), ("200", Decimal("-50.00"), Decimal("0.00")),
        ("825", Decimal("-10.00"), Decimal("0.00"))]
    where = 'Narration=="Gift cards spent on Shopify orders, 2025-03-04 [GC-shopify-2025-03-04]"'
    found = api.get("ManualJournals", params={"where": where}).json()["ManualJournals"]
    assert [j["ManualJournalID"] for j in found] == [first]
    paged = api.get("ManualJournals", params={"page": 1, "pageSize": 1}).json()
    assert paged["pagination"]["itemCount"] == 2 and len(paged["ManualJournals"]) == 1
    # a posted journal is edited in place (POST with its id); a PUT never updates
    lines = journal()["JournalLines"]
    lines[0]["LineAmount"], lines[1]["LineAmount"] = 72.00, -62.00
    edited = api.send("POST", "ManualJournals", {"ManualJournals": [{"ManualJournalID": first, "JournalLines": lines}]})
    assert edited.status_code == 200, edited.text
    assert loads(api.get(f"ManualJournals/{first}").text)["ManualJournals"][0]["JournalLines"][0]["LineAmount"] == 72
    refused = api.send("PUT", "ManualJournals", {"ManualJournals": [{"ManualJournalID": first, **journal()}]})
    assert refused.status_code == 400
    voided = api.send("POST", f"ManualJournals/{first}", {"Status": "VOIDED"})
    assert voided.status_code == 200 and voided.json()["ManualJournals"][0]["Status"] == "VOIDED"
    again = api.send("POST", f"ManualJournals/{first}", {"Status": "POSTED"})
    assert again.status_code == 400  # a voided journal is final
    assert api.get("ManualJournals/not-an-id").status_code == 404
    stats = xero_env.emulator.stats()
    assert stats["manual_journals"] == 2 and stats["manual_journals_created"] == 2
    assert stats["manual_journals_updated"] == 2
