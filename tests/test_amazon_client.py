"""Amazon SP-API client: LWA token exchange and renewal, credentials, per-operation limits."""
from __future__ import annotations

import logging
import threading
import time

import pytest

from finance_pipeline.http.client import ApiError
from finance_pipeline.platforms.amazon.client import live_connection, make_client
from finance_pipeline.platforms.amazon.emulator import AmazonEmulator
from finance_pipeline.platforms.base import Connection
from finance_pipeline.settings import SettingsError

GROUPS = "/finances/v0/financialEventGroups"
SEARCH = "/orders/2026-01-01/orders"


def _client(running, settings, **creds):
    return make_client(Connection("amazon", running.url, {**running.emulator.credentials(), **creds}, settings))


def test_lwa_token_is_exchanged_once_and_sent_as_x_amz_access_token(settings, sandbox, start_emulator, caplog):
    running = start_emulator(AmazonEmulator, sandbox, time_scale=settings.time_scale)
    caplog.set_level(logging.DEBUG)
    with _client(running, settings) as client:
        for _ in range(3):
            body = client.call("listFinancialEventGroups", GROUPS, {"FinancialEventGroupStartedAfter": "2025-11-01T00:00:00Z"})
            assert body["payload"]["FinancialEventGroupList"]
        token = client.auth.headers()["x-amz-access-token"]
    assert token.startswith("Atza|")
    assert running.emulator.counters["tokens_issued"] == 1
    assert token not in caplog.text and running.emulator.refresh_token not in caplog.text


def test_an_expired_token_is_renewed_and_the_call_replayed(settings, sandbox, start_emulator):
    running = start_emulator(AmazonEmulator, sandbox, time_scale=settings.time_scale)
    with _client(running, settings) as client:
        client.call("listFinancialEventGroups", GROUPS, {"FinancialEventGroupStartedAfter": "2025-11-01T00:00:00Z"})
        running.emulator.expire_tokens()  # Amazon answers 403 "The access token you provided has expired."
        client.call("listFinancialEventGroups", GROUPS, {"FinancialEventGroupStartedAfter": "2025-11-01T00:00:00Z"})
    assert running.emulator.counters["tokens_issued"] == 2


def test_a_token_near_its_end_is_renewed_before_use(settings, sandbox, start_emulator):
    running = start_emulator(AmazonEmulator, sandbox, time_scale=settings.time_scale)
    running.emulator.token_lifetime_s = 30  # inside the one-minute renewal margin from the start
    with _client(running, settings) as client:
        client.call("listFinancialEventGroups", GROUPS, {"FinancialEventGroupStartedAfter": "2025-11-01T00:00:00Z"})
        client.call("listFinancialEventGroups", GROUPS, {"FinancialEventGroupStartedAfter": "2025-11-01T00:00:00Z"})
    assert running.emulator.counters["tokens_issued"] == 2


def test_a_refused_refresh_token_stops_with_the_variables_named(settings, sandbox, start_emulator):
    running = start_emulator(AmazonEmulator, sandbox, time_scale=settings.time_scale)
    with _client(running, settings, refresh_token="Atzr|revoked") as client:
        with pytest.raises(ApiError) as err:
            client.call("listFinancialEventGroups", GROUPS, {"FinancialEventGroupStartedAfter": "2025-11-01T00:00:00Z"})
    assert "AMAZON_SP_REFRESH_TOKEN" in str(err.value) and "Atzr|revoked" not in str(err.value)


def test_missing_live_credentials_name_the_variable(settings, monkeypatch):
    for name in ("AMAZON_LWA_CLIENT_ID", "AMAZON_LWA_CLIENT_SECRET", "AMAZON_SP_REFRESH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("finance_pipeline.settings._load_dotenv", lambda path: {})
    with pytest.raises(SettingsError, match="AMAZON_LWA_CLIENT_ID"):
        live_connection(settings)
    monkeypatch.setenv("AMAZON_LWA_CLIENT_ID", "amzn1.application-oa2-client.x")
    monkeypatch.setenv("AMAZON_LWA_CLIENT_SECRET", "s")
    with pytest.raises(SettingsError, match="AMAZON_SP_REFRESH_TOKEN"):
        live_connection(settings)
    monkeypatch.setenv("AMAZON_SP_REFRESH_TOKEN", "Atzr|x")
    conn = live_connection(settings)
    assert conn.base_url == "https://sellingpartnerapi-eu.amazon.com"
    assert conn.get("token_url") == "https://api.amazon.com/auth/o2/token"


@pytest.mark.parametrize("op,path,params,calls", [
    ("listFinancialEventGroups", GROUPS, {"FinancialEventGroupStartedAfter": "2025-11-01T00:00:00Z"}, 64),
    ("searchOrders", SEARCH, {"lastUpdatedAfter": "2025-12-30T00:00:00Z", "maxResultsPerPage": 1}, 32),
])
def test_eight_threads_stay_within_the_operation_bucket(settings, sandbox, start_emulator, op, path, params, calls):
    """Burst then the documented rate, per operation: no request is ever refused."""
    scale = 300.0 if op == "searchOrders" else settings.time_scale
    running = start_emulator(AmazonEmulator, sandbox, time_scale=scale)
    conn_settings = settings.__class__(**{**settings.__dict__, "time_scale": scale})
    client = make_client(Connection("amazon", running.url, running.emulator.credentials(), conn_settings))
    errors: list[BaseException] = []
    per_thread = calls // 8
    assert per_thread * 8 == calls

    def work() -> None:
        try:
            for _ in range(per_thread):
                client.call(op, path, params)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    client.close()
    assert errors == []
    assert running.emulator.counters["over_limit"] == 0
    assert client.stats["status_429"] == 0
    rate, burst = {"listFinancialEventGroups": (0.5, 30), "searchOrders": (0.0056, 20)}[op]
    # everything beyond the burst had to wait for the bucket to refill
    assert took >= (calls - burst) / (rate * scale) * 0.9
