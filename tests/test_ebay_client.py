"""eBay client: live credentials named when missing, the refresh-token flow (one mint, reused,
renewed on a 401), Fulfillment and Finances on their own hosts, and the daily quotas respected
by 8 threads with no call refused."""
from __future__ import annotations

import shutil
import threading

import pytest

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.ebay import client as ebay_client
from finance_pipeline.platforms.ebay.emulator import EbayEmulator
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import SettingsError
from tests.conftest import make_settings

ENV = ("EBAY_CLIENT_ID", "EBAY_CLIENT_SECRET", "EBAY_REFRESH_TOKEN", "EBAY_ENVIRONMENT", "EBAY_MARKETPLACE_ID")


@pytest.fixture
def no_ebay_env(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("finance_pipeline.settings._load_dotenv", lambda path: {})


def test_live_connection_names_the_missing_variables(tmp_path, no_ebay_env, monkeypatch):
    settings = make_settings(tmp_path)
    for name in ENV[:3]:
        with pytest.raises(SettingsError, match=name):
            ebay_client.live_connection(settings)
        monkeypatch.setenv(name, f"value-of-{name}")
    connection = ebay_client.live_connection(settings)
    assert connection.base_url == "https://api.ebay.com"
    assert connection.get("finances_base_url") == "https://apiz.ebay.com"
    assert "value-of-EBAY_CLIENT_SECRET" not in repr(connection.credentials)
    monkeypatch.setenv("EBAY_ENVIRONMENT", "sandbox")
    assert ebay_client.live_connection(settings).get("finances_base_url") == "https://apiz.sandbox.ebay.com"


@pytest.fixture
def sandbox(small_world_dir, tmp_path) -> Sandbox:
    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    return Sandbox(tmp_path / "sandbox")


def test_refresh_token_flow(sandbox, tmp_path):
    running = serve(EbayEmulator(sandbox, EmulatorConfig(time_scale=30)))
    try:
        creds = dict(running.emulator.credentials())
        # Finances on its own host name (apiz in reality): same emulator, reached as localhost
        creds["finances_base_url"] = running.url.replace("127.0.0.1", "localhost")
        clients = ebay_client.make_clients(Connection("ebay", running.url, creds, make_settings(tmp_path)))
        assert clients.finances.base_url.startswith("http://localhost:")
        assert clients.fulfillment.base_url.startswith("http://127.0.0.1:")
        for _ in range(3):
            clients.fulfillment.get("/sell/fulfillment/v1/order", params={"limit": 1})
            clients.finances.get("/sell/finances/v1/payout", params={"limit": 1})
        assert clients.auth.minted == 1 and running.emulator.counters["tokens_user"] == 1
        running.emulator.expire_tokens()  # the access token dies early: one 401, one refresh, replayed
        body = clients.finances.get_json("/sell/finances/v1/payout", params={"limit": 1})
        assert body["payouts"] and clients.auth.minted == 2
        assert clients.finances.stats["status_401"] == 1
        clients.close()
    finally:
        running.stop()


def test_bad_refresh_token_fails_with_the_answer(sandbox, tmp_path):
    running = serve(EbayEmulator(sandbox, EmulatorConfig(time_scale=30)))
    try:
        creds = {**running.emulator.credentials(), "refresh_token": "v^1.1#revoked"}
        clients = ebay_client.make_clients(Connection("ebay", running.url, creds, make_settings(tmp_path)))
        with pytest.raises(Exception, match="invalid_grant"):
            clients.fulfillment.get("/sell/fulfillment/v1/order")
        clients.close()
    finally:
        running.stop()


def test_eight_threads_stay_within_the_daily_quota(sandbox, tmp_path):
    """A "day" compressed to 2 s; 10 Finances calls per day; 32 calls from 8 threads: none refused."""
    scale = 86_400 / 2
    running = serve(EbayEmulator(sandbox, EmulatorConfig(time_scale=scale), quotas={"finances": 10}))
    try:
        settings = make_settings(tmp_path, time_scale=scale)
        clients = ebay_client.make_clients(Connection("ebay", running.url, running.emulator.credentials(), settings),
                                           quotas={"finances": 10})
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(4):
                    clients.finances.get("/sell/finances/v1/payout", params={"limit": 1})
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        clients.close()
    finally:
        running.stop()
    assert not errors
    assert running.emulator.counters["over_limit"] == 0
    assert clients.finances.stats["status_200"] == 32
