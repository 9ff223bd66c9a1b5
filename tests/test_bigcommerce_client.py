"""The BigCommerce client: X-Auth-Token on /stores/{hash}/, V2 paging to the 204 past the end, V3
paging, live credentials named when missing, secrets kept out of logs, and the store's quota —
8 threads hammering the emulator are never refused, and a quota spent by another app is waited out
from the X-Rate-Limit headers."""
from __future__ import annotations

import logging

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.bigcommerce import client as bc_client
from finance_pipeline.platforms.bigcommerce.emulator import QUOTA, BigCommerceEmulator
from finance_pipeline.platforms.bigcommerce.source import v2_pages, v3_pages
from source_helpers import live_connection_after_each_missing, statuses_from_eight_threads


def test_live_connection_names_missing_variables(monkeypatch, settings):
    conn = live_connection_after_each_missing(
        monkeypatch, settings, bc_client.live_connection,
        [("BIGCOMMERCE_STORE_HASH", "BIGCOMMERCE_STORE_HASH", "abc123"),
         ("BIGCOMMERCE_ACCESS_TOKEN", "BIGCOMMERCE_ACCESS_TOKEN", "tok_live_456")],
        unset=("BIGCOMMERCE_API_URL",))
    assert conn.base_url == "https://api.bigcommerce.com" and conn.secret("access_token") == "tok_live_456"
    assert bc_client.make_client(conn).url("v2/orders") == "https://api.bigcommerce.com/stores/abc123/v2/orders"


def _client(running, settings):
    return bc_client.make_client(Connection("bigcommerce", running.url, running.emulator.credentials(), settings))


def test_pages_every_order_and_refund_and_keeps_secrets_out_of_logs(sandbox, settings, start_emulator, caplog,
                                                                     monkeypatch):
    from finance_pipeline.platforms.bigcommerce import source

    monkeypatch.setattr(source, "LIMIT", 20)
    running = start_emulator(BigCommerceEmulator, sandbox, time_scale=30, fault_rate=0.3)
    creds = running.emulator.credentials()
    client = _client(running, settings)
    with caplog.at_level(logging.DEBUG):
        ids = [o["id"] for page in v2_pages(client, "v2/orders", {"sort": "id:asc"}) for o in page]
        refunds = [r["id"] for page in v3_pages(client, "v3/orders/payment_actions/refunds", {}) for r in page]
    con = sandbox.connect()
    expected = [r[0] for r in con.execute("select order_id from bigcommerce_orders where created_at <= ? "
                                          "order by order_id", [sandbox.clock]).fetchall()]
    expected_refunds = [r[0] for r in con.execute("select refund_id from bigcommerce_refunds where created_at <= ? "
                                                  "order by refund_id", [sandbox.clock]).fetchall()]
    con.close()
    # faults (429, 5xx, truncated bodies, timeouts) retried away; a shifted page may repeat a row
    assert sorted(set(ids)) == expected and len(ids) - len(set(ids)) <= running.emulator.faults["duplicate_page"]
    assert sorted(set(refunds)) == expected_refunds and len(expected) > 40  # more than two pages
    assert client.stats["retries"] > 0
    assert creds["access_token"] not in caplog.text
    client.close()


def test_eight_threads_never_exceed_the_quota(sandbox, settings, start_emulator):
    running = start_emulator(BigCommerceEmulator, sandbox, time_scale=30)
    client = _client(running, settings)
    n = QUOTA + 60  # more than one (compressed) window's allowance
    assert statuses_from_eight_threads(client, "v2/orders", {"limit": 1}, n) == [200] * n
    assert running.emulator.counters["over_limit"] == 0


def test_quota_spent_by_another_app_is_waited_out(sandbox, settings, start_emulator):
    running = start_emulator(BigCommerceEmulator, sandbox, time_scale=30)
    while running.emulator.window.try_acquire() <= 0:  # another app on the store used the whole quota
        pass
    client = _client(running, settings)
    first = client.get("v2/orders", params={"limit": 1})
    assert first.status == 200 and client.stats["status_429"] == 1  # one 429, then the reset was waited for
    resp = client.get("v2/orders", params={"limit": 1})
    assert resp.status == 200 and int(resp.headers["x-rate-limit-requests-quota"]) == QUOTA
    assert client.stats["status_429"] == 1
    client.close()
