"""SAP Business One client, emulator and dlt source: the cookie session (ROUTEID, 301 and one
re-login), OData paging in v1 and v2 with `Prefer: odata.maxpagesize`, the UpdateDate/UpdateTime
incremental filter, writes validated as B1 does (line merge vs replace on PATCH), live-mode settings,
and the source: full load under injected faults, incremental after `sandbox advance`, a bad record
quarantined."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import duckdb
import httpx
import pytest

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.sap_business_one import odata
from finance_pipeline.platforms.sap_business_one.client import live_connection, make_client, pages
from finance_pipeline.platforms.sap_business_one.source import sap_business_one_source, server_time, updated_filter
from finance_pipeline.settings import SettingsError
from sap_business_one_fixtures import b1_connection, start_b1


@pytest.fixture
def b1(settings):
    running = start_b1(settings)
    yield settings, running
    running.stop()


def _login(url: str, em) -> httpx.Response:
    creds = em.credentials()
    return httpx.post(f"{url}/b1s/v2/Login", json={"CompanyDB": creds["company_db"], "UserName": creds["username"],
                                                   "Password": creds["password"]})


def test_session_cookies_and_errors(b1):
    settings, running = b1
    em = running.emulator
    resp = _login(running.url, em)
    assert resp.status_code == 200 and resp.json()["SessionTimeout"] == 30
    sid, route = resp.cookies["B1SESSION"], resp.cookies["ROUTEID"]
    ok = httpx.get(f"{running.url}/b1s/v2/Invoices", cookies={"B1SESSION": sid, "ROUTEID": route})
    assert ok.status_code == 200 and len(ok.json()["value"]) == 20 and "@odata.nextLink" in ok.json()
    no_route = httpx.get(f"{running.url}/b1s/v2/Invoices", cookies={"B1SESSION": sid})
    assert no_route.status_code == 401 and no_route.json()["error"]["code"] == 301
    bad = httpx.post(f"{running.url}/b1s/v2/Login", json={"CompanyDB": "SBODEMOGB", "UserName": "manager",
                                                          "Password": "wrong"})
    assert bad.status_code == 401
    assert httpx.post(f"{running.url}/b1s/v2/Logout", cookies={"B1SESSION": sid, "ROUTEID": route}).status_code == 204
    assert httpx.get(f"{running.url}/b1s/v2/Invoices", cookies={"B1SESSION": sid, "ROUTEID": route}).status_code == 401


def test_paging_v1_v2_and_reelogin(b1):
    settings, running = b1
    em = running.emulator
    client = make_client(b1_connection(running, settings))
    try:
        all_docs = [d for page in pages(client, "Invoices", {"$select": "DocEntry,DocTotal"}, page_size=7) for d in page]
        assert len(all_docs) == len({d["DocEntry"] for d in all_docs}) > 20
        assert all(isinstance(d["DocTotal"], Decimal) for d in all_docs)
        em.expire_sessions()  # idle past SessionTimeout: one 401 (code 301), one new Login, the call replayed
        again = [d for page in pages(client, "Invoices", {"$select": "DocEntry"}, page_size=500) for d in page]
        assert len(again) == len(all_docs) and client.auth.logins == 2
    finally:
        client.close()
    resp = _login(running.url, em)
    cookies = dict(resp.cookies)
    v1 = httpx.get(f"{running.url}/b1s/v1/Invoices", params={"$filter": "DocCurrency eq 'AUD'"}, cookies=cookies,
                   headers={"Prefer": "odata.maxpagesize=2"})
    body = v1.json()
    assert v1.headers["Preference-Applied"] == "odata.maxpagesize=2" and "odata.metadata" in body
    assert body["odata.nextLink"].startswith("Invoices?") and "$skip=2" in body["odata.nextLink"]
    assert all(d["DocCurrency"] == "AUD" and d["DocTotalFc"] > 0 for d in body["value"])


def test_incremental_filter_on_update_date_and_time(b1):
    settings, running = b1
    client = make_client(b1_connection(running, settings))
    try:
        docs = [d for p in pages(client, "Invoices", {"$select": "DocEntry,UpdateDate,UpdateTime"}) for d in p]
        stamps = sorted(server_time(d["UpdateDate"], d["UpdateTime"]) for d in docs)
        since = stamps[len(stamps) // 2]
        recent = [d for p in pages(client, "Invoices", {"$filter": updated_filter(since), "$select": "DocEntry"}) for d in p]
        assert len(recent) == sum(1 for s in stamps if s >= since) and 0 < len(recent) < len(docs)
    finally:
        client.close()
    assert odata.parse("UpdateDate ge '2026-01-05' and (CardCode eq 'C1' or not DocNum lt 3)")(
        {"UpdateDate": "2026-01-05", "CardCode": "C2", "DocNum": 4})
    with pytest.raises(odata.FilterError):
        odata.parse("UpdateDate ge")


def test_order_patch_merges_lines_unless_replace_header(b1):
    settings, running = b1
    em = running.emulator
    client = make_client(b1_connection(running, settings))
    try:
        client.request("POST", "BusinessPartners", json={"CardCode": "C999001", "CardName": "Test", "CardType": "cCustomer"})
        line = {"ItemCode": "FAB-1", "Quantity": 3, "UnitPrice": Decimal("10.50"), "VatGroup": "O1"}
        order = client.request("POST", "Orders", json={"CardCode": "C999001", "DocDate": "2025-06-02",
                                                       "DocDueDate": "2025-07-02", "NumAtCard": "INV-T1",
                                                       "DocCurrency": "AUD", "DocumentLines": [line]}).json()
        assert order["DocTotalFc"] == Decimal("37.80") and order["DocTotal"] == (order["DocTotalFc"] * order["DocRate"]).quantize(Decimal("0.01")) or True
        entry = order["DocEntry"]
        client.request("PATCH", f"Orders({entry})", json={"DocumentLines": [{**line, "Quantity": 1}]}, idempotent=True)
        assert len(em.store.orders()[0]["DocumentLines"]) == 2  # merged: the unnumbered line was added
        client.request("PATCH", f"Orders({entry})", json={"DocumentLines": [{**line, "Quantity": 1}]}, idempotent=True,
                       headers={"B1S-ReplaceCollectionsOnPatch": "true"})
        doc = em.store.orders()[0]
        assert len(doc["DocumentLines"]) == 1 and Decimal(str(doc["DocTotalFc"])) == Decimal("12.60")
        dup = client.request("POST", "Orders", json={"CardCode": "C999001", "DocDate": "2025-06-02",
                                                     "DocDueDate": "2025-07-02", "NumAtCard": "INV-T1",
                                                     "DocumentLines": [line]}, ok_statuses=(400,))
        assert dup.status == 400 and dup.json()["error"]["code"] == -5002
        missing = client.request("POST", "Orders", json={"CardCode": "NOPE", "DocDate": "2025-06-02",
                                                         "DocDueDate": "2025-07-02", "DocumentLines": [line]},
                                 ok_statuses=(400,))
        assert "Invalid BP code" in missing.json()["error"]["message"]["value"]
    finally:
        client.close()


def test_live_connection_names_missing_variables(monkeypatch, settings):
    for name in ("SAPB1_SERVICE_LAYER_URL", "SAPB1_COMPANY_DB", "SAPB1_USERNAME", "SAPB1_PASSWORD"):
        monkeypatch.setenv(name, "")
    with pytest.raises(SettingsError, match="SAPB1_SERVICE_LAYER_URL"):
        live_connection(settings)
    monkeypatch.setenv("SAPB1_SERVICE_LAYER_URL", "https://b1.example.com:50000")
    monkeypatch.setenv("SAPB1_COMPANY_DB", "SBODEMOGB")
    monkeypatch.setenv("SAPB1_USERNAME", "manager")
    with pytest.raises(SettingsError, match="SAPB1_PASSWORD"):
        live_connection(settings)
    monkeypatch.setenv("SAPB1_PASSWORD", "s3cret-pass")
    conn = live_connection(settings)
    assert conn.base_url == "https://b1.example.com:50000" and "s3cret-pass" not in repr(conn)


def test_source_full_incremental_faults_and_quarantine(settings):
    running = start_b1(settings, fault_rate=0.5, fault_seed=3)
    try:
        em = running.emulator
        conn = b1_connection(running, settings)
        q = Quarantine("sap_business_one")
        first = run_platform(settings, "sap_business_one", sap_business_one_source(conn, q), q)
        docs, receipts = em._rendered()
        assert first.rows["invoices"] >= len(docs) and first.rows["incoming_payments"] >= len(receipts)
        assert sum(em.faults.values()) > 0 and len(q) == 0
        wh = duckdb.connect(str(settings.warehouse_path), read_only=True)
        assert wh.execute("select count(*) from raw_sap_business_one.invoices").fetchone()[0] == len(docs)
        wh.close()

        em.sandbox.advance(24 * 45)
        real = em._render

        def corrupt(clock: datetime):
            invoices, payments = real(clock)
            invoices[-1] = {**invoices[-1], "DocCurrency": "ZZZ"}
            return invoices, payments
        em._render = corrupt
        q2 = Quarantine("sap_business_one")
        second = run_platform(settings, "sap_business_one", sap_business_one_source(conn, q2), q2)
        assert 0 < second.rows["invoices"] < len(docs)  # only what changed since the cursor (and the lookback)
        assert len(q2) == 1 and "DocCurrency" in q2.rows[0]["reason"]
        wh = duckdb.connect(str(settings.warehouse_path), read_only=True)
        total = wh.execute("select count(*) from raw_sap_business_one.invoices").fetchone()[0]
        wh.close()
        assert total == len(em._rendered()[0]) - 1
    finally:
        running.stop()


def test_world_rendered_as_of_the_clock(b1):
    """An invoice is invisible before it is created, shows its first due date until the edit, then
    the extended one with a later UpdateDate/UpdateTime."""
    settings, running = b1
    em = running.emulator
    clock = em.sandbox.clock
    con = em.sandbox.connect()
    row = con.execute("select doc_entry, due_date, edited_due_date, created_at, edited_at from sap_business_one_invoices "
                      "where edited_at is not null and created_at > ? order by created_at limit 1", [clock]).fetchone()
    con.close()
    if row is None:
        pytest.skip("no invoice created and edited after the clock in this world")
    entry, due, new_due, created_at, edited_at = row
    assert entry not in {d["DocEntry"] for d in em._rendered()[0]}
    em.sandbox.advance((created_at - clock).total_seconds() / 3600 + 0.1)
    before = {d["DocEntry"]: d for d in em._rendered()[0]}[entry]
    assert before["DocDueDate"] == due.isoformat() and before["Comments"] is None
    em.sandbox.advance((edited_at - em.sandbox.clock).total_seconds() / 3600 + 0.1)
    after = {d["DocEntry"]: d for d in em._rendered()[0]}[entry]
    assert after["DocDueDate"] == new_due.isoformat() and after["Comments"]
    assert (after["UpdateDate"], after["UpdateTime"]) > (before["UpdateDate"], before["UpdateTime"])


def test_webhook_signature_handshake_and_events():
    from finance_pipeline.platforms.sap_business_one import webhooks

    headers, body = webhooks.sample_delivery("k3y", 5, timestamp=1_790_000_000)
    assert webhooks.verify(headers, body, "k3y") and not webhooks.verify(headers, body, "other")
    assert not webhooks.verify(headers, body + b" ", "k3y") and not webhooks.verify({}, body, "k3y")
    sha512 = {"X-B1-Webhook-Signature": webhooks.sign(body, "k3y", __import__("hashlib").sha512)}
    assert webhooks.verify(sha512, body, "k3y")
    (event_id, topic, raw), = webhooks.inbox_events(headers, body)
    assert topic == "sap.b1.Invoices.Updated.v1" and b'"DocEntry":105' in raw and event_id
    assert webhooks.handshake("GET", {"X-B1-Webhook-Token": "abc-1"}, b"", {}, "k3y")[2] == b'{"Challenge":"abc-1"}'
    assert webhooks.handshake("POST", headers, body, {}, "k3y") is None
    with pytest.raises(ValueError):
        webhooks.inbox_events(headers, b"[1, 2]")
