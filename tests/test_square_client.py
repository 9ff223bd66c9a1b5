"""The Square client: credentials, auth and version headers, cursors (GET and SearchOrders POST),
pacing under 8 threads with zero refusals, and retries on Square's 429 and 5xx."""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import pytest

from finance_pipeline.http.pagination import body_cursor_pages
from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.square import API_VERSION
from finance_pipeline.platforms.square.client import live_connection, make_client
from finance_pipeline.platforms.square.emulator import SquareEmulator
from finance_pipeline.settings import SettingsError


def connect(running, settings) -> Connection:
    return Connection("square", running.url, running.emulator.credentials(), settings)


def test_missing_token_names_the_variable(settings, monkeypatch):
    monkeypatch.delenv("SQUARE_ACCESS_TOKEN", raising=False)
    monkeypatch.setattr("finance_pipeline.settings._load_dotenv", lambda path: {})
    with pytest.raises(SettingsError, match="SQUARE_ACCESS_TOKEN"):
        live_connection(settings)
    monkeypatch.setenv("SQUARE_ACCESS_TOKEN", "EAAAlive-token")
    monkeypatch.setenv("SQUARE_ENVIRONMENT", "sandbox")
    conn = live_connection(settings)
    assert conn.base_url == "https://connect.squareupsandbox.com" and "EAAAlive-token" not in repr(conn.credentials)


def test_headers_and_both_cursor_styles(settings, sandbox, start_emulator):
    running = start_emulator(SquareEmulator, sandbox, time_scale=settings.time_scale)
    with make_client(connect(running, settings)) as client:
        resp = client.get("v2/locations")
        assert resp.headers["square-version"] == API_VERSION
        loc = resp.json()["locations"][0]["id"]
        pages = list(body_cursor_pages(client, "v2/payments", {"begin_time": "2013-01-01T00:00:00Z", "limit": 40}))
        ids = [p["id"] for page in pages for p in page["payments"]]
        assert len(pages) > 2 and len(ids) == len(set(ids)) and "cursor" not in pages[-1]
        body = {"location_ids": [loc], "limit": 60, "query": {"sort": {"sort_field": "CREATED_AT", "sort_order": "ASC"}}}
        orders = [o["id"] for page in body_cursor_pages(client, "v2/orders/search", method="POST", json=body)
                  for o in page["orders"]]
        with sandbox.connect() as con:
            (n,) = con.execute("select count(*) from square_orders where created_at <= ?", [sandbox.clock]).fetchone()
        assert len(orders) == len(set(orders)) == n
    bad = dataclasses.replace(connect(running, settings))
    object.__setattr__(bad, "credentials", {"access_token": "EAAAwrong"})
    with make_client(bad) as client, pytest.raises(Exception, match="401"):
        client.get("v2/payments")


def test_eight_threads_stay_under_the_limit(settings, sandbox, start_emulator):
    slow = dataclasses.replace(settings, time_scale=2.0)
    running = start_emulator(SquareEmulator, sandbox, time_scale=slow.time_scale)
    with make_client(connect(running, slow)) as client:
        def burst(_):
            return [client.get("v2/payouts", params={"limit": 5}).status for _ in range(12)]

        with ThreadPoolExecutor(8) as pool:
            statuses = [s for chunk in pool.map(burst, range(8)) for s in chunk]
    assert statuses == [200] * 96
    assert running.emulator.counters["over_limit"] == 0


def test_retries_squares_429_and_5xx(settings, sandbox, start_emulator):
    running = start_emulator(SquareEmulator, sandbox, time_scale=settings.time_scale, fault_rate=0.3,
                             read_faults=("429", "500", "503"))
    with make_client(connect(running, settings)) as client:
        for _ in range(10):
            assert client.get("v2/locations").status == 200
        assert client.stats["retries"] > 0
    assert running.emulator.faults
