"""Sage Intacct XML gateway: emulator fidelity and the client — sender/user auth, sessions that expire
(the client signs in again), readByQuery + readMore paging, the WHENMODIFIED filter, the concurrency
limit (GW-0010), duplicate controlids refused with uniqueid, XML with a DTD refused, faults, and the
dlt source (incremental, bad rows quarantined)."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest

from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.sage_intacct import client as si_client
from finance_pipeline.platforms.sage_intacct import wire
from finance_pipeline.platforms.sage_intacct.emulator import SageIntacctEmulator
from finance_pipeline.platforms.sage_intacct.source import DOC_QUERY, sage_intacct_source
from finance_pipeline.settings import SettingsError

ENV = ("INTACCT_SENDER_ID", "INTACCT_SENDER_PASSWORD", "INTACCT_COMPANY_ID", "INTACCT_USER_ID",
       "INTACCT_USER_PASSWORD", "INTACCT_ENTITY_ID")


def _session(running, settings) -> si_client.IntacctSession:
    return si_client.make_client(Connection("sage_intacct", running.url, running.emulator.credentials(), settings))


def test_live_connection_names_missing_variables(monkeypatch, settings):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(settings.data_dir)
    with pytest.raises(SettingsError, match="INTACCT_SENDER_ID"):
        si_client.live_connection(settings)
    for name in ENV[:4]:
        monkeypatch.setenv(name, "x")
    with pytest.raises(SettingsError, match="INTACCT_USER_PASSWORD"):
        si_client.live_connection(settings)
    monkeypatch.setenv("INTACCT_USER_PASSWORD", "pw-live")
    conn = si_client.live_connection(settings)
    assert conn.base_url == "https://api.intacct.com" and "pw-live" not in repr(conn)


def test_pages_every_document_and_filters_on_whenmodified(sandbox, settings, start_emulator):
    running = start_emulator(SageIntacctEmulator, sandbox, time_scale=30, fault_rate=0.25)
    session = _session(running, settings)
    pages = list(session.query("SODOCUMENT", DOC_QUERY, page_size=7))
    docs = [d for page in pages for d in page]
    con = sandbox.connect()
    truth = con.execute("select count(*) from sage_intacct_documents where created_at <= ?",
                        [sandbox.clock]).fetchone()[0]
    assert 30 <= truth <= 200 and len(docs) == truth == len({d["DOCNO"] for d in docs})
    assert len(pages) >= -(-truth // 7) and all(len(p) <= 7 for p in pages)
    assert all(d["DOCPARID"] == "Sales Invoice" and d["DOCNO"].startswith("SI-") for d in docs)
    assert any(d["STATE"] == "Canceled" for d in docs)
    # money is decimal text; dates are Intacct's MM/DD/YYYY
    assert all(wire.parse_idate(d["WHENCREATED"]) for d in docs) and "." in docs[0]["TRX_TOTAL"]
    since = sandbox.clock - timedelta(days=60)
    recent = [d for page in session.query("SODOCUMENT", f"{DOC_QUERY} AND WHENMODIFIED >= '{wire.itimestamp(since)}'")
              for d in page]
    assert 0 < len(recent) < len(docs)
    assert all(wire.parse_itimestamp(d["WHENMODIFIED"]) >= since.replace(microsecond=0) for d in recent)
    assert running.emulator.faults and session.stats["requests"] > len(pages)  # faults were injected, and retried
    clean = [d for page in _session(running, settings).query("SODOCUMENT", DOC_QUERY, page_size=7) for d in page]
    assert [d["DOCNO"] for d in sorted(clean, key=lambda d: int(d["RECORDNO"]))] == \
        [d["DOCNO"] for d in sorted(docs, key=lambda d: int(d["RECORDNO"]))]
    session.close()


def test_session_expiry_signs_in_again_and_bad_credentials_fail(sandbox, settings, start_emulator):
    running = start_emulator(SageIntacctEmulator, sandbox, time_scale=30)
    running.emulator.session_timeout_s = 0.3
    session = _session(running, settings)
    first = [d for p in session.query("ARPYMT", "", page_size=1000) for d in p]
    time.sleep(0.5)
    again = [d for p in session.query("ARPYMT", "", page_size=1000) for d in p]
    assert first == again and first and session.logins == 2
    creds = {**running.emulator.credentials(), "user_password": "wrong"}
    bad = si_client.make_client(Connection("sage_intacct", running.url, creds, settings))
    with pytest.raises(si_client.IntacctError, match="Sign-in information is incorrect"):
        list(bad.query("ARPYMT", ""))
    creds = {**running.emulator.credentials(), "sender_password": "wrong"}
    bad = si_client.make_client(Connection("sage_intacct", running.url, creds, settings))
    with pytest.raises(si_client.IntacctError, match="XL03000006"):
        list(bad.query("ARPYMT", ""))


def test_concurrency_limit_enforced_and_respected(sandbox, settings, start_emulator):
    running = start_emulator(SageIntacctEmulator, sandbox, time_scale=30)
    emulator = running.emulator
    creds = emulator.credentials()
    # a client that ignores the limit is refused with GW-0010 / HTTP 429
    session = _session(running, settings)
    sid = session._current()[0]
    body = wire.request_xml(wire.Sender(creds["sender_id"], creds["sender_password"]), wire.session_auth(sid),
                            [wire.function("q", wire.read_by_query("SODOCUMENTENTRY", "", 1000))], controlid="c")
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: httpx.post(running.url + wire.PATH, content=body, timeout=30), range(16)))
    refused = [a for a in answers if a.status_code == 429]
    assert refused and b"GW-0010" in refused[0].content and emulator.counters["over_limit"] == len(refused)
    # our client holds at most 2 requests in flight: never refused
    before = emulator.counters["over_limit"]
    emulator.peak_concurrency = 0
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: [r for p in session.query("SODOCUMENTENTRY", "", page_size=200) for r in p], range(8)))
    assert emulator.counters["over_limit"] == before and emulator.peak_concurrency <= 2
    session.close()


def test_uniqueid_refuses_a_replayed_controlid_and_dtds_are_refused(sandbox, settings, start_emulator):
    running = start_emulator(SageIntacctEmulator, sandbox, time_scale=30)
    session = _session(running, settings)
    fn = [wire.function("q", wire.read_by_query("CUSTOMER", "CUSTOMERID = 'C000001'", 10))]
    assert session.call(fn, controlid="batch-1", uniqueid=True)[0].ok
    with pytest.raises(si_client.IntacctError, match="XL03000009"):
        session.call(fn, controlid="batch-1", uniqueid=True)
    evil = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<request><control><senderid>&x;</senderid></control></request>")
    answer = httpx.post(running.url + wire.PATH, content=evil)
    assert answer.status_code == 200 and b"XL03000003" in answer.content and b"root:" not in answer.content
    with pytest.raises(wire.UnsafeXml):
        wire.parse(evil)


def test_source_loads_incrementally_and_quarantines_bad_rows(sandbox, settings, start_emulator, monkeypatch):
    from finance_pipeline.platforms.sage_intacct import emulator as em

    running = start_emulator(SageIntacctEmulator, sandbox, time_scale=30)
    conn = Connection("sage_intacct", running.url, running.emulator.credentials(), settings)
    original = em.SageIntacctEmulator._render_payment

    def broken(p):
        row = original(p)
        if p["payment_id"] % 17 == 0:
            row["TRX_TOTALPAID"] = "12,50"  # not a decimal
        return row

    monkeypatch.setattr(em.SageIntacctEmulator, "_render_payment", staticmethod(broken))
    quarantine = Quarantine("sage_intacct")
    source = sage_intacct_source(conn, quarantine)
    tables = {}
    for name, resource in source.resources.items():
        tables[name] = sum(t.num_rows for t in resource)
    con = sandbox.connect()
    n_pay = con.execute("select count(*) from sage_intacct_payments where paid_at <= ?", [sandbox.clock]).fetchone()[0]
    bad = con.execute("select count(*) from sage_intacct_payments where paid_at <= ? and payment_id % 17 = 0",
                      [sandbox.clock]).fetchone()[0]
    n_lines = con.execute("select count(*) from sage_intacct_document_lines l join sage_intacct_documents d "
                          "using (record_no) where d.created_at <= ?", [sandbox.clock]).fetchone()[0]
    assert tables["arpayments"] == n_pay - bad and bad > 0
    assert tables["sodocument_entries"] == n_lines and tables["arpayment_details"] == n_pay
    assert len(quarantine) == bad and all("TRX_TOTALPAID" in r["reason"] and r["entity"] == "arpayments"
                                          for r in quarantine.rows)
