"""NetSuite publisher against the emulator, over REST (default) and SOAP: idempotent re-runs, edits
in place, one refused record quarantined with NetSuite's message, the concurrency limit, auth."""
from __future__ import annotations

import time
from decimal import Decimal

import duckdb
import httpx
import jwt
import pytest

from conftest import make_settings
from finance_pipeline.platforms.netsuite import client as ns_client
from finance_pipeline.platforms.netsuite import wire
from finance_pipeline.platforms.netsuite.emulator import ACCOUNT_ID, NetSuiteEmulator
from finance_pipeline.platforms.netsuite.publish import make_transport, publish_trade
from finance_pipeline.sandbox import runtime
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import SettingsError
from xero_fixtures import build_marts, mart_rows, set_line_quantity


@pytest.fixture
def ns(tmp_path):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_marts(settings.warehouse_path, n_invoices=120, n_customers=20)
    running = serve(NetSuiteEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(time_scale=settings.time_scale)))
    runtime.write_endpoints(settings, {"netsuite": running})
    yield settings, running, made
    running.stop()


def _publish(settings, kind, **kw):
    connection = runtime.connection(settings, "netsuite")
    return publish_trade(settings, connection, settings.warehouse_path, transport=make_transport(connection, kind),
                         **kw)


def _write_counters(emulator) -> dict:
    return {k: v for k, v in emulator.state.counters().items() if k.endswith(("_created", "_updated"))}


@pytest.mark.parametrize("kind", ["rest", "soap"])
def test_publish_twice_changes_nothing_then_an_edit_updates_in_place(ns, kind):
    settings, running, made = ns
    emulator = running.emulator
    expected = made["invoices"] - made["voided"]
    first = _publish(settings, kind)
    assert first.ok, first.summary()
    assert first.created == expected and first.mismatches == []
    invoices = {d["externalId"]: d for d in emulator.records("invoice")}
    orders = {d["externalId"] for d in emulator.records("salesOrder")}
    assert len(invoices) == expected and len(orders) == expected
    marts = mart_rows(settings.warehouse_path)
    sample = invoices["INV-1001"]
    assert sample["total"] == marts["INV-1001"]["total_amount"] and sample["tranId"] == "INV-1001"
    assert sample["dueDate"] == marts["INV-1001"]["due_on"].isoformat()
    assert "INV-1007" not in invoices  # voided before it was ever published: never sent

    before = _write_counters(emulator)
    second = _publish(settings, kind)
    assert second.ok and second.unchanged == expected and second.writes == 0
    assert _write_counters(emulator) == before  # nothing was written

    set_line_quantity(settings.warehouse_path, "INV-1003", 1, 7)
    third = _publish(settings, kind)
    assert third.ok, third.summary()
    assert third.updated == 1 and third.of("salesOrder").updated == 1 and third.created == 0
    after = {d["externalId"]: d for d in emulator.records("invoice")}
    assert after["INV-1003"]["id"] == invoices["INV-1003"]["id"]  # same record, updated in place
    assert after["INV-1003"]["total"] == mart_rows(settings.warehouse_path)["INV-1003"]["total_amount"]
    assert len(after) == expected


@pytest.mark.parametrize("kind", ["rest", "soap"])
def test_a_refused_record_is_quarantined_and_the_rest_published(ns, kind):
    settings, running, made = ns
    emulator = running.emulator
    # someone keyed an invoice by hand with the number INV-1005 (another externalId): NetSuite refuses
    # our INV-1005 as a duplicate document number; everything else must still go through
    customer, _ = emulator.store.write("customer", {"companyName": "Walk-in", "subsidiary": {"id": "1"}},
                                       mode="add", external_id="HAND-1")
    emulator.store.write("invoice", {"entity": {"id": str(customer)}, "tranId": "INV-1005", "tranDate": "2025-01-07",
                                     "subsidiary": {"id": "1"}, "currency": {"id": "1"},
                                     "item": {"items": [{"item": {"id": "310"}, "quantity": 1, "amount": "10.00",
                                                         "taxCode": {"id": "5"}}]}},
                         mode="add", external_id="HAND-INV-1005")
    result = _publish(settings, kind)
    refused = [e for e in result.errors if e.object_type == "invoice"]
    assert [e.key for e in refused] == ["INV-1005"]
    assert "already used" in refused[0].message
    assert result.of("invoice").failed == 1 and result.created == made["invoices"] - made["voided"] - 1
    assert result.quarantined == 1
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    rows = con.execute("SELECT entity, record_id, reason FROM ops.quarantine WHERE platform = 'netsuite'").fetchall()
    con.close()
    assert rows == [("netsuite.invoice", "INV-1005", rows[0][2])] and "already used" in rows[0][2]
    # a re-run retries it (still refused) and does not double the quarantine row
    again = _publish(settings, kind)
    assert [e.key for e in again.errors if e.object_type == "invoice"] == ["INV-1005"]
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    assert con.execute("SELECT COUNT(*) FROM ops.quarantine WHERE platform = 'netsuite'").fetchone()[0] == 1
    con.close()


def test_requests_in_flight_stay_within_the_account_limit(ns, monkeypatch):
    settings, running, made = ns
    emulator = running.emulator
    monkeypatch.setenv("NETSUITE_CONCURRENCY", "3")
    result = _publish(settings, "rest")
    assert result.ok
    assert emulator.peak_concurrency <= 3 and emulator.counters["over_limit"] == 0
    # an account whose other integrations use most of the pool: the emulator allows 2, we send 3 at
    # a time; the 429s (CONCURRENCY_LIMIT_EXCEEDED) are retried and nothing is lost or doubled
    emulator.set_concurrency_limit(2)
    set_line_quantity(settings.warehouse_path, "INV-1010", 1, 11)
    with duckdb.connect(str(settings.warehouse_path)) as con:  # forget the orders: all sent again (upserts)
        con.execute("DELETE FROM ops.publish_ledger WHERE object_type = 'salesOrder'")
    again = _publish(settings, "rest")
    assert again.ok, again.summary()
    assert len(emulator.records("salesOrder")) == made["invoices"] - made["voided"]


def test_soap_passport_and_rest_assertion_are_checked(ns):
    settings, running, _ = ns
    creds = running.emulator.credentials()
    # a SOAP envelope written by hand (the platform doc's shape), with a correct passport: parsed
    nonce, ts = "abc123XYZ", str(int(time.time()))
    sig = wire.tba_signature(ACCOUNT_ID, creds["consumer_key"], creds["token_id"], nonce, ts,
                             creds["consumer_secret"], creds["token_secret"])
    envelope = f"""<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
      xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
      xmlns:platformMsgs="urn:messages_2025_2.platform.webservices.netsuite.com"
      xmlns:platformCore="urn:core_2025_2.platform.webservices.netsuite.com">
     <soapenv:Header><platformMsgs:tokenPassport>
       <platformCore:account>{ACCOUNT_ID}</platformCore:account>
       <platformCore:consumerKey>{creds["consumer_key"]}</platformCore:consumerKey>
       <platformCore:token>{creds["token_id"]}</platformCore:token>
       <platformCore:nonce>{nonce}</platformCore:nonce><platformCore:timestamp>{ts}</platformCore:timestamp>
       <platformCore:signature algorithm="HMAC-SHA256">{sig}</platformCore:signature>
     </platformMsgs:tokenPassport></soapenv:Header>
     <soapenv:Body><upsertList xmlns="urn:messages_2025_2.platform.webservices.netsuite.com">
       <record xsi:type="listRel:Customer" externalId="CUST-HAND"
               xmlns:listRel="urn:relationships_2025_2.lists.webservices.netsuite.com">
         <listRel:companyName>Harrogate Drapery</listRel:companyName><listRel:subsidiary internalId="1"/>
       </record>
       <record xsi:type="tranSales:SalesOrder" externalId="SO-HAND"
               xmlns:tranSales="urn:sales_2025_2.transactions.webservices.netsuite.com">
         <tranSales:entity externalId="CUST-NOPE"/>
         <tranSales:tranDate>2025-06-01T00:00:00+01:00</tranSales:tranDate>
       </record>
     </upsertList></soapenv:Body></soapenv:Envelope>"""
    url = creds["soap_url"]
    answer = httpx.post(url, content=envelope, headers={"SOAPAction": "upsertList", "Content-Type": "text/xml"})
    assert answer.status_code == 200
    assert answer.text.count('isSuccess="true"') == 2 and answer.text.count('isSuccess="false"') == 1
    assert "INVALID_KEY_OR_REF" in answer.text  # the order's entity does not exist: that record alone fails
    customer = running.emulator.store.get("customer", external_id="CUST-HAND")
    assert customer["companyName"] == "Harrogate Drapery"
    # the same envelope again: the nonce was used → refused as a replay
    replay = httpx.post(url, content=envelope, headers={"SOAPAction": "upsertList"})
    assert replay.status_code == 500 and "INVALID_LOGIN_ATTEMPT" in replay.text and "already used" in replay.text
    # a wrong signature
    bad = envelope.replace(nonce, "zzz999zzz").replace(sig, "AAAA" + sig[4:])
    refused = httpx.post(url, content=bad, headers={"SOAPAction": "upsertList"})
    assert refused.status_code == 500 and "InvalidCredentialsFault" in refused.text
    # REST: an assertion signed by another key is refused; ours is accepted (PS256)
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    forged = jwt.encode({"iss": creds["client_id"], "scope": ["rest_webservices"], "aud": creds["token_url"],
                         "iat": now, "exp": now + 3600}, other, algorithm="PS256",
                        headers={"kid": creds["certificate_id"]})
    form = {"grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    assert httpx.post(creds["token_url"], data={**form, "client_assertion": forged}).status_code == 400
    auth = ns_client.NetSuiteOAuth2(runtime.connection(settings, "netsuite"))
    try:
        assert auth.headers()["Authorization"].startswith("Bearer ")
    finally:
        auth.close()
    assert httpx.get(f"{creds['rest_url']}{wire.REST_RECORD}/invoice").status_code == 401


def test_dry_run_writes_nothing_and_shows_the_plan(ns):
    settings, running, made = ns
    result = _publish(settings, "rest", dry_run=True)
    assert result.dry_run["would_send"]["invoice.PUT eid (create)"] == made["invoices"] - made["voided"]
    sample = result.dry_run["sample"][0]
    assert sample["object_type"] == "customer" and sample["body"]["subsidiary"] == {"id": "1"}
    assert running.emulator.state.counters().get("invoice_created", 0) == 0
    assert (settings.data_dir / "publish" / "dry_run" / "netsuite.json").exists()


def test_live_mode_names_the_missing_variables(monkeypatch):
    for name in (*ns_client.REST_ENV, *ns_client.SOAP_ENV, *ns_client.REFERENCE_ENV, "NETSUITE_TRANSPORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(ns_client, "env", lambda name, default=None: default)
    with pytest.raises(SettingsError, match="NETSUITE_ACCOUNT_ID.*NETSUITE_CLIENT_ID"):
        ns_client.live_connection(make_settings("/tmp/unused", mode="live"))
    monkeypatch.setattr(ns_client, "env", lambda name, default=None: "soap" if name == "NETSUITE_TRANSPORT" else default)
    with pytest.raises(SettingsError, match="NETSUITE_CONSUMER_KEY"):
        ns_client.live_connection(make_settings("/tmp/unused", mode="live"))


def test_money_is_sent_and_read_back_exactly(ns):
    settings, running, _ = ns
    result = _publish(settings, "rest")
    assert result.ok
    marts = mart_rows(settings.warehouse_path)
    for doc in running.emulator.records("invoice"):
        m = marts[doc["externalId"]]
        assert isinstance(doc["total"], Decimal)
        assert (doc["subtotal"], doc["taxTotal"], doc["total"]) == (m["subtotal_amount"], m["tax_amount"],
                                                                    m["total_amount"])


@pytest.mark.parametrize("kind", ["rest", "soap"])
def test_injected_faults_lose_or_double_nothing(tmp_path, kind):
    settings = make_settings(tmp_path)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    made = build_marts(settings.warehouse_path, n_invoices=60, n_customers=12)
    running = serve(NetSuiteEmulator(Sandbox(settings.sandbox_dir), EmulatorConfig(
        time_scale=settings.time_scale, fault_rate=0.15 if kind == "rest" else 0.35,
        fault_seed=11 if kind == "rest" else 2, timeout_delay_s=1.5)))  # SOAP: few, large requests
    runtime.write_endpoints(settings, {"netsuite": running})
    try:
        for _ in range(3):  # a write with no definitive answer is settled by the next run
            result = _publish(settings, kind)
            if result.ok:
                break
        assert result.ok and result.mismatches == [], result.summary()
        assert sum(running.emulator.faults.values()) > 0
        for record_type in ("invoice", "salesOrder"):
            ext = [d["externalId"] for d in running.emulator.records(record_type)]
            assert len(ext) == len(set(ext)) == made["invoices"] - made["voided"]
    finally:
        running.stop()
