"""The Stripe client: credentials, version pin, limits, Stripe-Should-Retry, idempotent POSTs."""
from __future__ import annotations

import dataclasses

import httpx
import pytest

from finance_pipeline import settings as settings_mod
from finance_pipeline.http.client import Response
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.stripe import API_VERSION
from finance_pipeline.platforms.stripe.client import live_connection, make_client, rate_per_s, should_retry
from finance_pipeline.platforms.stripe.emulator import StripeEmulator
from finance_pipeline.settings import SettingsError


def test_live_connection_needs_the_api_key(monkeypatch, settings):
    monkeypatch.setattr(settings_mod, "_load_dotenv", lambda path: {})
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    with pytest.raises(SettingsError, match="STRIPE_API_KEY"):
        live_connection(settings)
    monkeypatch.setenv("STRIPE_API_KEY", "rk_live_abcdefghijkl")
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_live_secret")
    conn = live_connection(settings)
    assert conn.base_url == "https://api.stripe.com"
    assert conn.secret("api_key") == "rk_live_abcdefghijkl" and conn.secret("webhook_secret") == "whsec_live_secret"
    assert "rk_live_abcdefghijkl" not in repr(conn)


def test_limits_per_key_kind():
    assert rate_per_s("sk_test_x") == rate_per_s("rk_test_x") == 25
    assert rate_per_s("sk_live_x") == rate_per_s("rk_live_x") == 100


def test_should_retry_header():
    def resp(headers):
        return Response(409, httpx.Headers(headers), b"{}", "u")

    assert should_retry(resp({"Stripe-Should-Retry": "true"})) is True
    assert should_retry(resp({"Stripe-Should-Retry": "false"})) is False
    assert should_retry(resp({})) is None


def test_client_headers_and_retry_hint(settings, sandbox, start_emulator):
    running = start_emulator(StripeEmulator, sandbox, time_scale=settings.time_scale, fault_rate=0.5,
                             read_faults=("429",), fault_seed=3)
    conn = Connection("stripe", running.url, running.emulator.credentials(), settings)
    client = make_client(conn)
    seen = []
    client.on_response = seen.append
    for _ in range(6):
        assert client.get_json("/v1/charges", params={"limit": 1})["object"] == "list"
    assert running.emulator.faults["429"] > 0 and client.stats["retries"] == running.emulator.faults["429"]
    assert all(r.headers["stripe-version"] == API_VERSION for r in seen if r.status == 200)
    refused = [r for r in seen if r.status == 429]
    assert refused and all(r.headers["stripe-should-retry"] == "true" for r in refused)


def test_posts_carry_one_idempotency_key_across_retries(settings, sandbox, start_emulator):
    """A write committed but answered with a 500 (or not answered in time) is retried with the
    same key and replayed by the server: every refund exists exactly once."""
    running = start_emulator(StripeEmulator, sandbox, time_scale=settings.time_scale, fault_rate=0.5,
                             read_faults=(), write_faults=("500_after_commit", "timeout_after_commit"),
                             timeout_delay_s=1.5)
    conn = Connection("stripe", running.url, running.emulator.credentials(), dataclasses.replace(settings))
    client = make_client(conn)
    charges = [c for c in client.get_json("/v1/charges", params={"limit": 100})["data"]
               if c["status"] == "succeeded" and not c["refunded"]][:6]
    for charge in charges:
        refund = client.request("POST", "/v1/refunds", data={"charge": charge["id"], "amount": "100"}).json()
        assert refund["charge"] == charge["id"]
    assert sum(running.emulator.faults.values()) > 0
    assert len(running.emulator.posted_refunds) == len(charges)
    assert sorted(r["charge"] for r in running.emulator.posted_refunds.values()) == sorted(c["id"] for c in charges)
