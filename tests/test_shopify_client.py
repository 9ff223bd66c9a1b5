"""The Shopify client: live credentials from the environment, base URLs, and a leaky bucket that
adapts to the size the shop reports."""
from __future__ import annotations

import httpx
import pytest

from finance_pipeline.http.client import Response
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.shopify.client import ShopifyCallLimit, live_connection, make_client
from finance_pipeline.platforms.shopify.emulator import ShopifyEmulator
from finance_pipeline.settings import Secret, SettingsError


@pytest.fixture
def no_shopify_env(monkeypatch):
    monkeypatch.delenv("SHOPIFY_SHOP", raising=False)
    monkeypatch.delenv("SHOPIFY_ACCESS_TOKEN", raising=False)
    monkeypatch.setattr("finance_pipeline.settings._load_dotenv", lambda path: {})


def test_live_connection_names_the_missing_variables(settings, no_shopify_env, monkeypatch):
    with pytest.raises(SettingsError, match="SHOPIFY_SHOP"):
        live_connection(settings)
    monkeypatch.setenv("SHOPIFY_SHOP", "curtain-co")
    with pytest.raises(SettingsError, match="SHOPIFY_ACCESS_TOKEN"):
        live_connection(settings)
    monkeypatch.setenv("SHOPIFY_ACCESS_TOKEN", "shpat_live_0123456789")
    conn = live_connection(settings)
    assert conn.base_url == "https://curtain-co.myshopify.com"
    assert isinstance(conn.credentials["access_token"], Secret)
    assert "shpat_live" not in repr(conn.credentials)
    client = make_client(conn)
    try:
        assert client.base_url == "https://curtain-co.myshopify.com/admin/api/2026-10"
    finally:
        client.close()


def _response(header: str | None) -> Response:
    headers = httpx.Headers({"X-Shopify-Shop-Api-Call-Limit": header} if header else {})
    return Response(200, headers, b"{}", "https://x")


def test_call_limit_adapts_to_the_reported_bucket():
    bucket = ShopifyCallLimit(time_scale=1.0)
    assert (bucket.capacity, bucket.leak_per_s) == (40, 2.0)
    bucket.on_response(_response("12/400"))  # a Plus shop
    assert (bucket.capacity, bucket.leak_per_s) == (400, 20.0)
    assert bucket.level >= 11.9  # what the shop counted (other apps included) is taken into account
    bucket.on_response(_response(None))  # e.g. an injected 429 without the header: ignored
    bucket.on_response(_response("garbage"))
    assert bucket.capacity == 400
    scaled = ShopifyCallLimit(time_scale=30.0)
    scaled.on_response(_response("1/80"))
    assert scaled.leak_per_s == pytest.approx(4.0 * 30)


def test_sandbox_client_talks_to_the_emulator(settings, sandbox, start_emulator):
    running = start_emulator(ShopifyEmulator, sandbox, time_scale=settings.time_scale)
    conn = Connection("shopify", running.url, running.emulator.credentials(), settings)
    client = make_client(conn)
    try:
        assert client.base_url == f"{running.url}/admin/api/2026-10"
        assert client.get_json("shop.json")["shop"]["myshopify_domain"] == "curtains-sandbox.myshopify.com"
        assert client.limiter.capacity == 400  # learned from the first response
        for _ in range(100):
            client.get_json("orders/count.json", params={"status": "any"})
    finally:
        client.close()
    assert running.emulator.counters["over_limit"] == 0
