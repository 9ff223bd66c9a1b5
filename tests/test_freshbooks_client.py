"""FreshBooks client and emulator: OAuth2 with single-use refresh tokens (rotation persisted), 401
without a token, the list envelope and `pages` paging with `per_page` capped at 100, Eastern
timestamps and the incremental filter, write validation errors in FreshBooks' shape, webhook
signatures (HMAC of the JSON-serialised form fields) and the callback verification step, live mode
settings errors naming the variable."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import httpx
import pytest

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.freshbooks import webhooks
from finance_pipeline.platforms.freshbooks.client import (
    TOKEN_FILE, FreshBooksError, accounting_path, call, confirm_callback, list_pages, live_connection, make_client,
    to_eastern, to_utc,
)
from finance_pipeline.platforms.freshbooks.emulator import FreshBooksEmulator
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import SettingsError
from tests.conftest import make_settings


@pytest.fixture
def env(tmp_path, small_world_dir, start_emulator):
    import shutil

    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    settings = make_settings(tmp_path)
    running = start_emulator(FreshBooksEmulator, Sandbox(settings.sandbox_dir), time_scale=30)
    connection = Connection("freshbooks", running.url, running.emulator.credentials(), settings)
    client = make_client(connection)
    yield settings, running, connection, client
    client.close()


def test_token_rotation_and_unauthenticated(env):
    settings, running, connection, client = env
    path = accounting_path(connection, "invoices", "invoices")
    assert httpx.get(f"{running.url}/{path}").status_code == 401
    call(client, "GET", path)
    saved = json.loads((settings.secrets_dir / TOKEN_FILE).read_text())
    creds = running.emulator.credentials()
    assert saved["refresh_token"] != creds["refresh_token"]
    # the initial refresh token is single use: spent, refused
    r = httpx.post(creds["token_url"], json={"grant_type": "refresh_token", "client_id": creds["client_id"],
                                             "client_secret": creds["client_secret"],
                                             "refresh_token": creds["refresh_token"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    # a new client in another process adopts the stored chain instead of spending a dead token
    other = make_client(connection)
    try:
        call(other, "GET", path)
    finally:
        other.close()


def test_pages_envelope_and_eastern_times(env):
    settings, running, connection, client = env
    path = accounting_path(connection, "invoices", "invoices")
    body = client.get_json(path, params={"per_page": 500, "page": 1})
    result = body["response"]["result"]
    assert result["per_page"] == 100 and set(result) >= {"invoices", "page", "pages", "total"}
    assert "lines" not in result["invoices"][0]
    small = [len(p) for p in list_pages(client, path, "invoices", {"include[]": "lines"})]
    assert sum(small) == result["total"]
    sandbox = Sandbox(settings.sandbox_dir)
    con = sandbox.connect()
    created = con.execute("select created_at from freshbooks_invoices where created_at <= ? and voided_at is null "
                          "and edited_at is null order by invoice_id limit 1 offset 5", [sandbox.clock]).fetchone()[0]
    con.close()
    doc = next(d for p in list_pages(client, path, "invoices", {}) for d in p if to_utc(d["created_at"]) == created)
    assert doc["created_at"] == to_eastern(created) and "T" not in doc["updated"]
    # the incremental filter is Eastern local time, inclusive
    since = to_utc(doc["updated"])
    newer = [d for p in list_pages(client, path, "invoices", {"search[updated_min]": to_eastern(since)}) for d in p]
    assert newer and all(to_utc(d["updated"]) >= since for d in newer)
    assert any(d["id"] == doc["id"] for d in newer)
    assert to_utc("2025-07-01 08:00:00") == datetime(2025, 7, 1, 12, tzinfo=timezone.utc)  # EDT
    assert to_utc("2025-01-15 08:00:00") == datetime(2025, 1, 15, 13, tzinfo=timezone.utc)  # EST


def test_write_validation_errors(env):
    _, _, connection, client = env
    with pytest.raises(FreshBooksError) as missing:
        call(client, "POST", accounting_path(connection, "invoices", "invoices"),
             {"invoice": {"create_date": "2025-06-01", "currency_code": "GBP"}})
    assert missing.value.errnos == {2002}
    with pytest.raises(FreshBooksError) as unknown:
        call(client, "POST", accounting_path(connection, "invoices", "invoices"),
             {"invoice": {"customerid": 999, "create_date": "2025-06-01", "currency_code": "GBP"}})
    assert unknown.value.status == 404 and unknown.value.errnos == {1012}
    created = call(client, "POST", accounting_path(connection, "users", "clients"),
                   {"client": {"organization": "Test Interiors", "currency_code": "GBP", "note": "C9"}})["client"]
    with pytest.raises(FreshBooksError) as bad_money:
        call(client, "POST", accounting_path(connection, "invoices", "invoices"),
             {"invoice": {"customerid": created["id"], "create_date": "2025-06-01", "currency_code": "GBP",
                          "lines": [{"name": "x", "qty": "1", "unit_cost": {"amount": "ten"}}]}})
    assert "unit_cost" in bad_money.value.message
    with pytest.raises(FreshBooksError):
        call(client, "POST", accounting_path(connection, "payments", "payments"),
             {"payment": {"invoiceid": 1, "amount": {"amount": "10.00"}, "date": "2025-06-01", "type": "Cheque"}})


def test_webhook_signature_handshake_and_registration(env):
    _, running, connection, client = env
    verifier = running.emulator.credentials()["webhook_verifier"]
    headers, body = running.emulator.delivery("invoice.update", 480_003)
    assert webhooks.verify(headers, body, verifier)
    assert not webhooks.verify(headers, body, verifier + "x")
    assert not webhooks.verify(headers, body.replace(b"480003", b"480004"), verifier)
    assert not webhooks.verify({k: v for k, v in headers.items() if "Hmac" not in k}, body, verifier)
    # the signature is over the JSON of the form fields, not the raw body
    form = webhooks.fields(body)
    assert webhooks.sign(form, verifier) == headers["X-FreshBooks-Hmac-SHA256"]
    (event_id, topic, raw), = webhooks.inbox_events(headers, body)
    assert topic == "invoice.update" and event_id.startswith("invoice.update:480003:") and raw == body
    with pytest.raises(ValueError):
        webhooks.inbox_events({}, b"")
    verify_body = b"name=callback.verify&object_id=5&verifier=" + verifier.encode()
    assert webhooks.handshake("POST", {}, verify_body, {}, "") == (200, {}, b"")
    assert webhooks.handshake("POST", {}, body, {}, "") is None
    assert webhooks.inbox_events({}, verify_body) == []
    cb = call(client, "POST", f"events/account/{connection.secret('account_id')}/events/callbacks",
              {"callback": {"event": "invoice", "uri": "https://example.com/webhooks/freshbooks"}})["callback"]
    assert cb["verified"] is False
    with pytest.raises(FreshBooksError):
        confirm_callback(client, connection, cb["callbackid"], "wrong")
    assert confirm_callback(client, connection, cb["callbackid"], verifier)["callback"]["verified"] is True


def test_live_connection_names_the_missing_variable(monkeypatch, tmp_path):
    for name in ("FRESHBOOKS_CLIENT_ID", "FRESHBOOKS_CLIENT_SECRET", "FRESHBOOKS_REFRESH_TOKEN", "FRESHBOOKS_ACCOUNT_ID"):
        monkeypatch.setenv(name, "x")
    monkeypatch.delenv("FRESHBOOKS_ACCOUNT_ID")
    with pytest.raises(SettingsError, match="FRESHBOOKS_ACCOUNT_ID"):
        live_connection(make_settings(tmp_path))
    monkeypatch.setenv("FRESHBOOKS_ACCOUNT_ID", "abc12")
    conn = live_connection(make_settings(tmp_path))
    assert conn.base_url == "https://api.freshbooks.com" and "x" not in repr(conn.credentials["client_secret"])
