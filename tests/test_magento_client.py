"""The Magento client: integration token as Bearer, money parsed as Decimal (never float), every
order paged by searchCriteria through faults, live credentials named when missing, and pacing
under the CDN limit — 8 threads are never refused."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.magento import client as mg_client
from finance_pipeline.platforms.magento.emulator import HOST_LIMIT, MagentoEmulator
from finance_pipeline.platforms.magento.source import search_pages
from finance_pipeline.settings import SettingsError


def test_live_connection_names_missing_variables(monkeypatch, settings):
    for name in ("MAGENTO_BASE_URL", "MAGENTO_ACCESS_TOKEN", "MAGENTO_STORE_CODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(settings.data_dir)
    with pytest.raises(SettingsError, match="MAGENTO_BASE_URL"):
        mg_client.live_connection(settings)
    monkeypatch.setenv("MAGENTO_BASE_URL", "https://shop.example.com/")
    with pytest.raises(SettingsError, match="MAGENTO_ACCESS_TOKEN"):
        mg_client.live_connection(settings)
    monkeypatch.setenv("MAGENTO_ACCESS_TOKEN", "tok_live")
    conn = mg_client.live_connection(settings)
    assert conn.base_url == "https://shop.example.com" and conn.get("store_code") == "default"
    assert mg_client.make_client(conn).base_url == "https://shop.example.com/rest/default/V1"


def test_pages_every_order_with_decimal_money_through_faults(sandbox, settings, start_emulator, monkeypatch):
    from finance_pipeline.platforms.magento import source as source_module

    monkeypatch.setattr(source_module, "PAGE_SIZE", 10)
    running = start_emulator(MagentoEmulator, sandbox, time_scale=30, fault_rate=0.3)
    client = mg_client.make_client(Connection("magento", running.url, running.emulator.credentials(), settings))
    items = [o for page in search_pages(client, "orders", None) for o in page]
    con = sandbox.connect()
    expected = con.execute("select count(*) from magento_orders where created_at <= ?", [sandbox.clock]).fetchone()[0]
    con.close()
    assert len({o["entity_id"] for o in items}) == expected
    assert client.stats["retries"] > 0
    fractional = [o["grand_total"] for o in items if not isinstance(o["grand_total"], int)]
    assert fractional and all(isinstance(x, Decimal) for x in fractional)
    client.close()


def test_eight_threads_never_exceed_the_limit(sandbox, settings, start_emulator):
    running = start_emulator(MagentoEmulator, sandbox, time_scale=30)
    client = mg_client.make_client(Connection("magento", running.url, running.emulator.credentials(), settings))
    n = HOST_LIMIT + 60
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: client.get("orders", params={"searchCriteria[pageSize]": 1}).status,
                                 range(n)))
    client.close()
    assert statuses == [200] * n and running.emulator.counters["over_limit"] == 0
