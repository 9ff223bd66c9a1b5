"""The WooCommerce client: Basic auth with the REST API keys, paging to X-WP-TotalPages, live
credentials named when missing, secrets kept out of logs, and pacing under the host's limit —
8 threads hammering the emulator are never refused."""
from __future__ import annotations

import logging

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.woocommerce import client as wc_client
from finance_pipeline.platforms.woocommerce.emulator import HOST_LIMIT, WooCommerceEmulator
from finance_pipeline.platforms.woocommerce.source import wp_pages
from source_helpers import live_connection_after_each_missing, statuses_from_eight_threads


def test_live_connection_names_missing_variables(monkeypatch, settings):
    conn = live_connection_after_each_missing(
        monkeypatch, settings, wc_client.live_connection,
        [("WOOCOMMERCE_STORE_URL", "WOOCOMMERCE_STORE_URL", "http://shop.example.com"),
         ("https://", "WOOCOMMERCE_STORE_URL", "https://shop.example.com"),  # a store's keys go over TLS only
         ("WOOCOMMERCE_CONSUMER_KEY", "WOOCOMMERCE_CONSUMER_KEY", "ck_live_123"),
         ("WOOCOMMERCE_CONSUMER_SECRET", "WOOCOMMERCE_CONSUMER_SECRET", "cs_live_456")])
    assert conn.base_url == "https://shop.example.com" and conn.secret("consumer_secret") == "cs_live_456"


def test_pages_every_order_and_keeps_secrets_out_of_logs(sandbox, settings, start_emulator, caplog):
    running = start_emulator(WooCommerceEmulator, sandbox, time_scale=30, fault_rate=0.3)
    creds = running.emulator.credentials()
    client = wc_client.make_client(Connection("woocommerce", running.url, creds, settings))
    with caplog.at_level(logging.DEBUG):
        pages = list(wp_pages(client, "orders", {"per_page": 20, "orderby": "id", "order": "asc"}))
    ids = [o["id"] for page in pages for o in page]
    con = sandbox.connect()
    expected = [r[0] for r in con.execute("select order_id from woocommerce_orders where created_at <= ? "
                                          "order by order_id", [sandbox.clock]).fetchall()]
    con.close()
    # faults (429, 5xx, truncated bodies, timeouts) retried away; a shifted page may repeat a row
    assert sorted(set(ids)) == expected and len(ids) - len(set(ids)) <= running.emulator.faults["duplicate_page"]
    assert client.stats["retries"] > 0
    assert creds["consumer_secret"] not in caplog.text and creds["consumer_key"] not in caplog.text
    client.close()


def test_eight_threads_never_exceed_the_host_limit(sandbox, settings, start_emulator):
    running = start_emulator(WooCommerceEmulator, sandbox, time_scale=30)
    client = wc_client.make_client(Connection("woocommerce", running.url, running.emulator.credentials(), settings))
    n = HOST_LIMIT + 60  # more than one (compressed) minute's allowance
    assert statuses_from_eight_threads(client, "orders", {"per_page": 1}, n) == [200] * n
    assert running.emulator.counters["over_limit"] == 0
    assert running.emulator.counters["requests"] >= n  # (a slow answer may be retried on a loaded machine)
