"""Client + dlt source against the Zoho Books emulator, into a temporary DuckDB: the desk's invoices
(with their lines), payments and contacts as the world shows them; a re-run changes nothing; after
`sandbox advance` the incremental run picks up new invoices, edits and payments; injected faults
change nothing; a bad record is quarantined; OAuth per data centre; webhook signatures."""
from __future__ import annotations

import shutil

import duckdb
import pytest

from finance_pipeline.ingest.pipeline import run_platform
from finance_pipeline.ingest.quarantine import Quarantine
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.zoho_books import webhooks
from finance_pipeline.platforms.zoho_books.client import call, live_connection, make_client, pages
from finance_pipeline.platforms.zoho_books.emulator import ZohoBooksEmulator
from finance_pipeline.platforms.zoho_books.source import zoho_books_source
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import SettingsError
from tests.conftest import make_settings


def fresh(tmp_path, small_world_dir):
    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    settings = make_settings(tmp_path)
    return settings, Sandbox(settings.sandbox_dir)


def connection(settings, running) -> Connection:
    return Connection("zoho_books", running.url, running.emulator.credentials(), settings)


def load(settings, running, quarantine: Quarantine | None = None):
    quarantine = quarantine if quarantine is not None else Quarantine("zoho_books")
    return run_platform(settings, "zoho_books", zoho_books_source(connection(settings, running), quarantine),
                        quarantine)


def query(settings, sql: str):
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def truth(sandbox: Sandbox) -> tuple:
    con = sandbox.connect()
    try:
        c = {"c": sandbox.clock}
        return con.execute("""select (select count(*) from zoho_books_invoices where created_at <= $c),
                                     (select count(*) from zoho_books_payments where created_at <= $c),
                                     (select count(*) from zoho_books_invoice_lines l join zoho_books_invoices i
                                      using (invoice_id) where i.created_at <= $c
                                      and coalesce(l.added_at, i.created_at) <= $c),
                                     (select count(*) from zoho_books_invoices where voided_at <= $c)""",
                           c).fetchone()
    finally:
        con.close()


def loaded(settings) -> tuple:
    return query(settings, """select (select count(*) from raw_zoho_books.invoices),
                                     (select count(*) from raw_zoho_books.customer_payments),
                                     (select sum(json_array_length(line_items)) from raw_zoho_books.invoices),
                                     (select count(*) from raw_zoho_books.invoices where status = 'void')""")[0]


def snapshot(settings) -> dict:
    return {t: sorted(query(settings, f"select * from raw_zoho_books.{t}"), key=str)
            for t in ("invoices", "customer_payments", "contacts")}


def test_full_load_rerun_and_incremental_after_advance(tmp_path, small_world_dir, start_emulator):
    settings, sandbox = fresh(tmp_path, small_world_dir)
    running = start_emulator(ZohoBooksEmulator, sandbox, time_scale=30)
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    assert query(settings, "select count(*) from raw_zoho_books.contacts")[0][0] >= 1
    first = snapshot(settings)
    before = running.emulator.counters["requests"]
    load(settings, running)
    assert snapshot(settings) == first
    assert running.emulator.counters["requests"] - before <= 12  # lists, and details of the last 2 h only
    sandbox.advance(24 * 45)
    load(settings, running)
    assert loaded(settings) == truth(sandbox)
    assert query(settings, "select count(*) - count(distinct invoice_id) from raw_zoho_books.invoices") == [(0,)]
    # balances follow the payments recorded since
    rows = query(settings, """select i.invoice_number, cast(i.balance as decimal(18,2)), cast(i.total as decimal(18,2))
                              from raw_zoho_books.invoices i where status <> 'void'""")
    con = sandbox.connect()
    paid = dict(con.execute("""select i.invoice_number, sum(p.amount) from zoho_books_payments p
                               join zoho_books_invoices i using (invoice_id) where p.created_at <= ? group by 1""",
                            [sandbox.clock]).fetchall())
    con.close()
    assert all(balance == total - paid.get(number, 0) for number, balance, total in rows)
    assert running.emulator.counters["over_limit"] == 0


def test_faults_change_nothing(tmp_path, small_world_dir, start_emulator, monkeypatch):
    from finance_pipeline.platforms.zoho_books import source as source_module

    clean_settings, clean_sandbox = fresh(tmp_path / "clean", small_world_dir)
    load(clean_settings, start_emulator(ZohoBooksEmulator, clean_sandbox, time_scale=30))
    monkeypatch.setattr(source_module, "PAGE_SIZE", 7)  # many pages, so the faults hit many requests
    settings, sandbox = fresh(tmp_path / "faulty", small_world_dir)
    running = start_emulator(ZohoBooksEmulator, sandbox, time_scale=30, fault_rate=0.10, timeout_delay_s=1.5)
    load(settings, running)
    assert sum(running.emulator.faults.values()) > 0
    assert snapshot(settings) == snapshot(clean_settings)


def test_bad_record_is_quarantined_and_the_run_goes_on(tmp_path, small_world_dir, start_emulator, monkeypatch):
    settings, sandbox = fresh(tmp_path, small_world_dir)
    running = start_emulator(ZohoBooksEmulator, sandbox, time_scale=30)
    original = running.emulator._render_world

    def corrupt(clock):
        contacts, invoices, payments = original(clock)
        invoices[0]["total"] = "12,50"
        return contacts, invoices, payments

    monkeypatch.setattr(running.emulator, "_render_world", corrupt)
    quarantine = Quarantine("zoho_books")
    load(settings, running, quarantine)
    assert [(r["entity"], r["reason"]) for r in quarantine.rows] == [("invoices", "total='12,50' is not a number")]
    invoices, *_ = truth(sandbox)
    assert loaded(settings)[0] == invoices - 1


def test_pagination_auth_and_limits(tmp_path, small_world_dir, start_emulator, monkeypatch):
    settings, sandbox = fresh(tmp_path, small_world_dir)
    running = start_emulator(ZohoBooksEmulator, sandbox, time_scale=30)
    client = make_client(connection(settings, running))
    walked = list(pages(client, "invoices", "invoices", {"sort_column": "last_modified_time"}, per_page=10))
    ids = [r["invoice_id"] for page in walked for r in page]
    assert len(walked) >= 3 and len(ids) == len(set(ids)) == truth(sandbox)[0]
    assert all("line_items" not in r for page in walked for r in page)
    times = [r["last_modified_time"] for page in walked for r in page]
    since = times[len(times) // 2]
    newer = [r for page in pages(client, "invoices", "invoices", {"last_modified_time": since}) for r in page]
    assert 0 < len(newer) < len(ids)
    running.emulator.revoke_tokens()  # expired token: one refresh, the call succeeds
    assert call(client, "GET", "invoices", {"per_page": 1})["code"] == 0 and client.auth.refreshes == 2
    client.close()
    # the organisation's 100 calls a minute (uncompressed here), from a client that ignores it
    import httpx

    strict = start_emulator(ZohoBooksEmulator, sandbox, time_scale=1)
    token = make_client(connection(settings, strict)).auth.headers()["Authorization"]
    with httpx.Client() as http:
        answers = [http.get(f"{strict.url}/books/v3/contacts", params={"organization_id": "20061234567"},
                            headers={"Authorization": token}) for _ in range(105)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused and refused[0].json()["code"] == 44 and "retry-after" not in refused[0].headers
    assert strict.emulator.counters["over_limit"] == len(refused)

    for name in ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_ORGANIZATION_ID"):
        monkeypatch.setenv(name, "x")
    monkeypatch.setenv("ZOHO_DATA_CENTRE", "uk-south")
    with pytest.raises(SettingsError, match="com, eu, in, com.au, jp, ca, sa, com.cn"):
        live_connection(settings)
    monkeypatch.setenv("ZOHO_DATA_CENTRE", "eu")
    monkeypatch.delenv("ZOHO_REFRESH_TOKEN")
    with pytest.raises(SettingsError, match="ZOHO_REFRESH_TOKEN"):
        live_connection(settings)
    monkeypatch.setenv("ZOHO_REFRESH_TOKEN", "x")
    live = live_connection(settings)
    assert live.get("accounts_url") == "https://accounts.zoho.eu" and live.base_url == "https://www.zohoapis.eu"


def test_webhook_signature_and_events():
    headers, body = webhooks.sample_delivery("s3cretTokenForBooks", 3, timestamp=1_760_000_000)
    assert webhooks.verify(headers, body, "s3cretTokenForBooks")
    assert not webhooks.verify(headers, body + b" ", "s3cretTokenForBooks")
    assert not webhooks.verify(headers, body, "another-secret-value")
    assert not webhooks.verify({"Content-Type": "application/json"}, body, "s3cretTokenForBooks")
    (event_id, topic, raw), = webhooks.inbox_events(headers, body)
    assert event_id.startswith("invoice:460000000041039:") and topic == "invoice.updated" and raw == body
    form = b"invoice_id=42&status=paid"
    sig = webhooks.sign(form, "k" * 16, "application/x-www-form-urlencoded")
    assert sig == webhooks.sign(b"status=paid&invoice_id=42", "k" * 16, "application/x-www-form-urlencoded")
    assert webhooks.verify({"content-type": "application/x-www-form-urlencoded", "x-zoho-webhook-signature": sig},
                           form, "k" * 16)
    with pytest.raises(ValueError):
        webhooks.inbox_events(headers, b'{"nothing": 1}')
