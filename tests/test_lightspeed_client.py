"""The Lightspeed client: credentials named when missing, rotating refresh tokens persisted before
use (and a 401 answered by one refresh), the leaky bucket under 8 threads with zero refusals."""
from __future__ import annotations

import dataclasses
import json
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from finance_pipeline.platforms.base import Connection
from finance_pipeline.platforms.lightspeed.client import TOKEN_FILE, live_connection, make_client
from finance_pipeline.platforms.lightspeed.emulator import LightspeedEmulator
from finance_pipeline.settings import SettingsError


def connect(running, settings) -> Connection:
    return Connection("lightspeed", running.url, running.emulator.credentials(), settings)


def test_missing_credentials_name_the_variables(settings, monkeypatch):
    for name in ("LIGHTSPEED_CLIENT_ID", "LIGHTSPEED_CLIENT_SECRET", "LIGHTSPEED_REFRESH_TOKEN", "LIGHTSPEED_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("finance_pipeline.settings._load_dotenv", lambda path: {})
    monkeypatch.setenv("LIGHTSPEED_CLIENT_ID", "abc")
    with pytest.raises(SettingsError) as err:
        live_connection(settings)
    assert "LIGHTSPEED_REFRESH_TOKEN" in str(err.value) and "LIGHTSPEED_ACCOUNT_ID" in str(err.value)
    assert "LIGHTSPEED_CLIENT_ID," not in str(err.value).split("(missing)")[0]


def test_tokens_rotate_are_persisted_and_401_refreshes(settings, sandbox, start_emulator):
    running = start_emulator(LightspeedEmulator, sandbox, time_scale=settings.time_scale)
    conn = connect(running, settings)
    with make_client(conn) as client:
        assert client.get("Sale.json", params={"limit": 1}).status == 200
        path = settings.secrets_dir / TOKEN_FILE
        first = json.loads(path.read_text())
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert first["refresh_token"] != conn.secret("refresh_token")
        running.emulator.expire_access_tokens()
        assert client.get("Sale.json", params={"limit": 1}).status == 200  # 401 -> one refresh -> replay
        second = json.loads(path.read_text())
        assert second["refresh_token"] != first["refresh_token"]
    # a new process starts from the token file, not from the spent initial refresh token
    with make_client(conn) as client:
        assert client.get("Sale.json", params={"limit": 1}).status == 200
    assert running.emulator.counters["invalid_grant"] == 0
    assert running.emulator.counters["token_refreshes"] == 2


def test_eight_threads_stay_under_the_bucket(settings, sandbox, start_emulator):
    slow = dataclasses.replace(settings, time_scale=4.0)
    running = start_emulator(LightspeedEmulator, sandbox, time_scale=slow.time_scale)
    with make_client(connect(running, slow)) as client:
        def burst(_):
            return [client.get("Sale.json", params={"limit": 1}).status for _ in range(12)]

        with ThreadPoolExecutor(8) as pool:
            statuses = [s for chunk in pool.map(burst, range(8)) for s in chunk]
    assert statuses == [200] * 96
    assert running.emulator.counters["over_limit"] == 0
