"""PayPal client: live credentials named when missing, one cached bearer token (renewed on a 401),
PayPal's `now` from the token answer, and 8 threads paced under the limit with no 429."""
from __future__ import annotations

import shutil
import threading

import pytest

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.paypal import client as paypal_client
from finance_pipeline.platforms.paypal.emulator import PayPalEmulator
from finance_pipeline.sandbox.server import EmulatorConfig, serve
from finance_pipeline.sandbox.store import Sandbox
from finance_pipeline.settings import SettingsError
from tests.conftest import make_settings

ENV = ("PAYPAL_CLIENT_ID", "PAYPAL_CLIENT_SECRET", "PAYPAL_WEBHOOK_ID", "PAYPAL_ENVIRONMENT")


def test_live_connection_names_the_missing_variables(tmp_path, monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("finance_pipeline.settings._load_dotenv", lambda path: {})
    settings = make_settings(tmp_path)
    for name in ENV[:2]:
        with pytest.raises(SettingsError, match=name):
            paypal_client.live_connection(settings)
        monkeypatch.setenv(name, f"value-of-{name}")
    assert paypal_client.live_connection(settings).base_url == "https://api-m.paypal.com"
    monkeypatch.setenv("PAYPAL_ENVIRONMENT", "sandbox")
    assert paypal_client.live_connection(settings).base_url == "https://api-m.sandbox.paypal.com"


@pytest.fixture
def sandbox(small_world_dir, tmp_path) -> Sandbox:
    shutil.copytree(small_world_dir / "sandbox", tmp_path / "sandbox")
    return Sandbox(tmp_path / "sandbox")


def test_token_is_cached_and_renewed_on_401(sandbox, tmp_path):
    r = serve(PayPalEmulator(sandbox, EmulatorConfig(time_scale=30)))
    try:
        client = paypal_client.make_client(Connection("paypal", r.url, r.emulator.credentials(), make_settings(tmp_path)))
        params = {"start_date": "2025-12-01T00:00:00Z", "end_date": "2025-12-31T00:00:00Z"}
        for _ in range(3):
            client.get("/v1/reporting/transactions", params=params)
        assert client.paypal_auth.minted == 1 and r.emulator.counters["tokens"] == 1
        assert client.paypal_auth.now() == sandbox.clock  # PayPal's now, from the token answer
        r.emulator.expire_tokens()
        assert client.get_json("/v1/reporting/transactions", params=params)["total_items"] > 0
        assert client.paypal_auth.minted == 2 and client.stats["status_401"] == 1
        client.close()
    finally:
        r.stop()


def test_eight_threads_no_429(sandbox, tmp_path):
    r = serve(PayPalEmulator(sandbox, EmulatorConfig(time_scale=1.0)))
    try:
        client = paypal_client.make_client(Connection("paypal", r.url, r.emulator.credentials(),
                                                      make_settings(tmp_path, time_scale=1.0)))
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(8):
                    client.get("/v1/reporting/transactions", params={"start_date": "2025-12-01T00:00:00Z",
                                                                    "end_date": "2025-12-02T00:00:00Z"})
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        client.close()
    finally:
        r.stop()
    assert not errors and client.stats["status_200"] == 64
    assert r.emulator.counters["over_limit"] == 0
