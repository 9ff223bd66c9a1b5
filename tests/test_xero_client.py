"""Xero OAuth2 client: rotating refresh tokens kept in a private, atomically replaced file; refreshes
serialised across threads and processes (no forked chains); the documented limits respected."""
from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from xero_fixtures import XeroEnv, xero_env  # noqa: F401  (xero_env is a fixture)
from finance_pipeline.platforms.xero.client import (
    REQUIRED_ENV, TOKEN_FILE, XeroAuth, XeroAuthError, live_connection, make_client,
)
from finance_pipeline.settings import PROJECT_ROOT, SettingsError


def new_auth(env: XeroEnv, **kw) -> XeroAuth:
    creds = env.emulator.credentials()
    return XeroAuth(token_url=creds["token_url"], client_id=creds["client_id"], client_secret=creds["client_secret"],
                    initial_refresh_token=creds["refresh_token"], token_path=env.settings.secrets_dir / TOKEN_FILE,
                    **kw)


def token_file(env: XeroEnv) -> dict:
    return json.loads((env.settings.secrets_dir / TOKEN_FILE).read_text())


def grant(env: XeroEnv, refresh_token: str) -> httpx.Response:
    creds = env.emulator.credentials()
    return httpx.post(creds["token_url"], auth=(creds["client_id"], creds["client_secret"]),
                      data={"grant_type": "refresh_token", "refresh_token": refresh_token})


def test_refresh_tokens_rotate_and_the_previous_one_has_a_grace_period(xero_env):
    creds = xero_env.emulator.credentials()
    first = grant(xero_env, creds["refresh_token"])
    assert first.status_code == 200
    body = first.json()
    assert body["expires_in"] == 1800 and body["token_type"] == "Bearer"
    assert body["access_token"].count(".") == 2  # JWT-shaped
    assert body["refresh_token"] != creds["refresh_token"]  # rotated

    second = grant(xero_env, body["refresh_token"]).json()
    again = grant(xero_env, body["refresh_token"])  # the previous one, within its 30-minute grace
    assert again.status_code == 200 and again.json()["refresh_token"] != second["refresh_token"]
    assert xero_env.emulator.stats()["refresh_forks"] == 1  # that reuse forked the chain

    xero_env.emulator.advance_clock(31 * 60)
    dead = grant(xero_env, body["refresh_token"])
    assert dead.status_code == 400 and dead.json() == {"error": "invalid_grant"}
    assert grant(xero_env, second["refresh_token"]).status_code == 200  # the head of the chain lives on
    # the access tokens issued half an hour ago have expired
    api = httpx.get(f"{creds['api_url']}/Organisation", headers={
        "Authorization": f"Bearer {body['access_token']}", "xero-tenant-id": creds["tenant_id"]})
    assert api.status_code == 401 and "invalid_token" in api.headers["www-authenticate"]

    assert grant(xero_env, "not-a-token").json() == {"error": "invalid_grant"}
    wrong = httpx.post(creds["token_url"], auth=(creds["client_id"], "wrong-secret"),
                       data={"grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert wrong.status_code == 401 and wrong.json() == {"error": "invalid_client"}


def test_token_file_is_private_and_atomically_replaced(xero_env):
    auth = new_auth(xero_env)
    path = xero_env.settings.secrets_dir / TOKEN_FILE
    assert not path.exists()
    auth.headers()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = token_file(xero_env)
    assert saved["refresh_token"] != xero_env.emulator.credentials()["refresh_token"]
    inode = path.stat().st_ino

    auth.refresh()
    rotated = token_file(xero_env)
    assert rotated["refresh_token"] != saved["refresh_token"] and rotated["access_token"] != saved["access_token"]
    assert path.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == [TOKEN_FILE, TOKEN_FILE + ".lock"]  # no temp files


def test_access_token_is_cached_until_shortly_before_it_expires(xero_env):
    now = [time.time()]
    auth = new_auth(xero_env, clock=lambda: now[0])
    first = auth.headers()["Authorization"]
    now[0] += 1000
    assert auth.headers()["Authorization"] == first and auth.refreshes == 1  # cached
    now[0] += 750  # inside the 60 s safety margin before the 1800 s expiry
    assert auth.headers()["Authorization"] != first and auth.refreshes == 2
    assert xero_env.emulator.stats()["token_refreshes"] == 2


def test_an_expired_access_token_is_refreshed_after_a_401(xero_env):
    auth = new_auth(xero_env)
    client = make_client(xero_env.connection(), auth=auth)
    assert client.get_json("Organisation")["Organisations"][0]["BaseCurrency"] == "GBP"
    assert auth.refreshes == 1
    xero_env.emulator.advance_clock(1801)  # Xero's clock says the 30 minutes are over
    assert client.get("Organisation").status == 200
    assert auth.refreshes == 2 and client.stats["status_401"] == 1
    client.close()


def test_a_new_process_adopts_the_token_file_and_the_seed_is_used_once(xero_env):
    new_auth(xero_env).headers()
    refreshes = xero_env.emulator.stats()["token_refreshes"]
    later = new_auth(xero_env)  # e.g. the next Dagster run
    later.headers()
    assert later.refreshes == 0 and xero_env.emulator.stats()["token_refreshes"] == refreshes
    later.refresh()
    uses = xero_env.emulator.store.refresh_token_uses()
    assert uses[xero_env.emulator.credentials()["refresh_token"]] == 1


def test_a_crash_before_saving_is_survivable_within_the_grace_period_only(xero_env):
    """Why the grace exists: if the process dies after Xero rotated but before the new token was
    saved, the file still holds the previous refresh token — usable for 30 minutes."""
    path = xero_env.settings.secrets_dir / TOKEN_FILE
    auth = new_auth(xero_env)
    auth.headers()
    old = path.read_bytes()
    auth.refresh()  # Xero rotated ...
    path.write_bytes(old)  # ... but (as if killed before the rename) the file still has the old chain
    os.chmod(path, 0o600)
    survivor = new_auth(xero_env)
    survivor.headers()  # adopts the (old) file, as a restarted process does
    survivor.refresh()  # a 401 makes it spend the previous refresh token: still accepted
    assert survivor.refreshes == 1

    xero_env.emulator.advance_clock(31 * 60)
    path.write_bytes(old)
    late = new_auth(xero_env)
    late.headers()
    with pytest.raises(XeroAuthError) as err:
        late.refresh()
    message = str(err.value)
    assert "invalid_grant" in message and "XERO_REFRESH_TOKEN" in message
    assert json.loads(old)["refresh_token"] not in message


def test_concurrent_refreshes_in_threads_do_not_fork_the_chain(xero_env):
    auths = [new_auth(xero_env) for _ in range(8)]
    auths[0].headers()
    barrier = threading.Barrier(len(auths))

    def hammer(auth: XeroAuth) -> None:
        barrier.wait()
        for _ in range(3):
            auth.refresh()

    with ThreadPoolExecutor(len(auths)) as pool:
        list(pool.map(hammer, auths))
    assert_linear_chain(xero_env)


PROCESS_SCRIPT = """
import json, sys, time
from pathlib import Path
from finance_pipeline.platforms.xero.client import XeroAuth
args = json.loads(sys.stdin.read())
auth = XeroAuth(token_url=args["token_url"], client_id=args["client_id"], client_secret=args["client_secret"],
                initial_refresh_token=args["refresh_token"], token_path=Path(args["token_path"]))
time.sleep(max(0.0, args["start_at"] - time.time()))
for _ in range(3):
    auth.refresh()
print(auth.refreshes)
"""


def test_concurrent_refreshes_in_processes_do_not_fork_the_chain(xero_env):
    creds = xero_env.emulator.credentials()
    args = {**creds, "token_path": str(xero_env.settings.secrets_dir / TOKEN_FILE), "start_at": time.time() + 1.5}
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", PROCESS_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, cwd=PROJECT_ROOT, env=env) for _ in range(4)]
    results = [p.communicate(json.dumps(args).encode(), timeout=60) for p in procs]
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err.decode()[-2000:]
    done = sum(int(out.decode().strip()) for out, _ in results)
    assert done >= 1
    assert_linear_chain(xero_env)
    assert xero_env.emulator.stats()["token_refreshes"] == done


def assert_linear_chain(env: XeroEnv) -> None:
    """Every refresh token was spent at most once, and the one never spent is the file's."""
    assert env.emulator.stats()["refresh_forks"] == 0
    uses = env.emulator.store.refresh_token_uses()
    assert max(uses.values()) == 1
    heads = [token for token, n in uses.items() if n == 0]
    assert heads == [token_file(env)["refresh_token"]]


def test_live_connection_names_every_missing_variable(monkeypatch, tmp_path):
    from conftest import make_settings
    for name in REQUIRED_ENV:
        monkeypatch.delenv(name, raising=False)
    if (PROJECT_ROOT / ".env").exists():
        pytest.skip("a project .env may provide the variables")
    with pytest.raises(SettingsError) as err:
        live_connection(make_settings(tmp_path))
    for name in REQUIRED_ENV:
        assert name in str(err.value)
    monkeypatch.setenv("XERO_CLIENT_ID", "ABC")
    monkeypatch.setenv("XERO_TENANT_ID", "tenant-guid")
    with pytest.raises(SettingsError) as err:
        live_connection(make_settings(tmp_path))
    assert "XERO_CLIENT_SECRET, XERO_REFRESH_TOKEN (missing)" in str(err.value)
    monkeypatch.setenv("XERO_CLIENT_SECRET", "s3cret-value-xyz")
    monkeypatch.setenv("XERO_REFRESH_TOKEN", "refresh-value-xyz")
    conn = live_connection(make_settings(tmp_path))
    assert conn.get("api_url") == "https://api.xero.com/api.xro/2.0"
    assert "s3cret-value-xyz" not in repr(conn)


def test_the_client_stays_under_the_limits_with_eight_threads(xero_env, caplog):
    """130 calls from 8 threads against 60/minute and 5 concurrent (a minute is 2 s here)."""
    caplog.set_level(logging.DEBUG)
    client = make_client(xero_env.connection())
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: client.get("TaxRates").status, range(130)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 130
    stats = xero_env.emulator.stats()
    assert stats["counters"].get("over_limit", 0) == 0
    assert elapsed >= 2 * 60 / xero_env.settings.time_scale  # the limiter had to wait
    saved = token_file(xero_env)
    for secret in (saved["access_token"], saved["refresh_token"], xero_env.emulator.credentials()["client_secret"]):
        assert secret not in caplog.text
    client.close()
