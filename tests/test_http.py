"""The shared HTTP layer: retries, Retry-After, truncated bodies, limiters, auth refresh, redaction."""
from __future__ import annotations

import logging
import threading
import time

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from finance_pipeline.http import ApiClient, ApiError, LeakyBucket, RetryPolicy, SlidingWindow
from finance_pipeline.http.client import StaticHeaders
from finance_pipeline.http.pagination import parse_link_header
from finance_pipeline.http.ratelimit import ConcurrencyLimiter, TokenBucket
from finance_pipeline.http.redaction import redact
from finance_pipeline.sandbox.server import Emulator, EmulatorConfig, serve
from finance_pipeline.settings import Secret


class Scripted(Emulator):
    """Answers each request from a script of (status, headers, body) then 200s."""

    name = "scripted"

    def __init__(self, script):
        super().__init__(sandbox=None, config=EmulatorConfig())  # type: ignore[arg-type]
        self.script = list(script)
        self.seen: list[Request] = []
        self.lock = threading.Lock()

    def routes(self):
        return [Route("/{path:path}", self.handle, methods=["GET", "POST", "PUT"])]

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        with self.lock:
            self.seen.append((request.method, request.url.path, dict(request.headers), body))
            step = self.script.pop(0) if self.script else (200, {}, b'{"ok": true}')
        status, headers, content = step
        return Response(content, status_code=status, headers=headers, media_type="application/json")


@pytest.fixture
def scripted():
    servers = []

    def start(script):
        em = Scripted(script)
        servers.append(serve(em))
        return em

    yield start
    for s in servers:
        s.stop()


def client_for(em, **kw) -> ApiClient:
    kw.setdefault("retry", RetryPolicy(max_attempts=5, base_delay_s=0.01))
    return ApiClient("test", em.base_url, timeout_s=2, **kw)


def test_retries_429_honouring_retry_after_then_succeeds(scripted):
    em = scripted([(429, {"Retry-After": "0.3"}, b"{}"), (503, {}, b"{}")])
    c = client_for(em)
    t0 = time.monotonic()
    assert c.get_json("/x") == {"ok": True}
    assert time.monotonic() - t0 >= 0.3
    assert len(em.seen) == 3 and c.stats["retries"] == 2


def test_truncated_body_is_retried_for_gets(scripted):
    em = scripted([(200, {}, b'{"data": [1, 2')])
    assert client_for(em).get_json("/x") == {"ok": True}


def test_post_without_idempotency_key_is_not_replayed(scripted):
    em = scripted([(500, {}, b"{}")])
    with pytest.raises(ApiError) as err:
        client_for(em).request("POST", "/write", json={"a": 1})
    assert err.value.status == 500 and len(em.seen) == 1


def test_post_with_idempotency_key_is_replayed(scripted):
    em = scripted([(500, {}, b"{}")])
    client_for(em).request("POST", "/write", json={"a": 1}, headers={"Idempotency-Key": "k1"})
    assert len(em.seen) == 2 and em.seen[0][3] == em.seen[1][3]


def test_client_errors_are_not_retried_and_name_the_platform(scripted):
    em = scripted([(400, {}, b'{"error": "bad"}')])
    with pytest.raises(ApiError, match="test: GET .* HTTP 400"):
        client_for(em).get("/x")
    assert len(em.seen) == 1


def test_401_refreshes_once_then_replays(scripted):
    em = scripted([(401, {}, b"{}")])

    class Auth:
        token = "old-token-value"
        refreshed = 0

        def headers(self):
            return {"Authorization": f"Bearer {self.token}"}

        def refresh(self):
            self.refreshed += 1
            self.token = "new-token-value"
            return True

    auth = Auth()
    client_for(em, auth=auth).get("/x")
    assert auth.refreshed == 1
    assert em.seen[-1][2]["authorization"] == "Bearer new-token-value"


def test_secrets_are_redacted_from_logs_and_errors(scripted, caplog):
    secret = Secret("shpat_supersecretvalue123", "token")
    em = scripted([(400, {}, b'{"echo": "shpat_supersecretvalue123"}')])
    caplog.set_level(logging.DEBUG, logger="finance_pipeline")
    c = client_for(em, auth=StaticHeaders({"X-Shopify-Access-Token": secret.value}))
    with pytest.raises(ApiError) as err:
        c.get("/x", params={"access_token": "abcdef123456"})
    assert "supersecret" not in str(err.value) and "abcdef123456" not in str(err.value)
    assert "supersecret" not in caplog.text and "abcdef123456" not in caplog.text
    assert repr(secret) == "Secret(token=***)"
    assert redact("Authorization: Bearer eyJabc.def") == "Authorization: Bearer ***"


def test_leaky_bucket_allows_burst_then_leaks():
    bucket = LeakyBucket(capacity=5, leak_per_s=10)
    assert all(bucket.try_acquire() == 0 for _ in range(5))
    wait = bucket.try_acquire()
    assert 0.05 < wait <= 0.11
    time.sleep(wait)
    assert bucket.try_acquire() == 0


def test_sliding_window_never_exceeds_limit_in_any_window():
    window = SlidingWindow(limit=10, window_s=0.5)
    stamps = []
    t_end = time.monotonic() + 1.6
    while time.monotonic() < t_end:
        window.acquire()
        stamps.append(time.monotonic())
    for i, t in enumerate(stamps):
        assert sum(1 for s in stamps[i:] if s - t < 0.5) <= 10
    assert len(stamps) >= 30  # and it uses the budget: 10 per 0.5 s over 1.6 s


def test_token_bucket_and_concurrency_limits():
    tb = TokenBucket(rate_per_s=100, burst=3)
    assert [tb.try_acquire() == 0 for _ in range(4)] == [True, True, True, False]
    cl = ConcurrencyLimiter(2)
    cl.acquire(); cl.acquire()
    assert cl.try_acquire() > 0
    cl.release()
    assert cl.try_acquire() == 0


def test_link_header_parsing():
    header = ('<https://shop/admin/api/2026-10/orders.json?limit=250&page_info=abc>; rel="previous", '
              '<https://shop/admin/api/2026-10/orders.json?limit=250&page_info=def>; rel="next"')
    links = parse_link_header(header)
    assert links["next"].endswith("page_info=def") and links["previous"].endswith("page_info=abc")


def test_read_ahead_keeps_order_raises_where_the_fetch_failed_and_stops_when_closed():
    from finance_pipeline.http.pagination import read_ahead

    assert list(read_ahead(iter(range(50)), depth=2)) == list(range(50))

    def failing():
        yield 1
        yield 2
        raise ValueError("page 3 answered 500")

    got = []
    with pytest.raises(ValueError, match="page 3"):
        for page in read_ahead(failing()):
            got.append(page)
    assert got == [1, 2]  # every page before the failure reached the caller first

    pulled: list[int] = []
    fetcher: list[threading.Thread] = []

    def endless():
        fetcher.append(threading.current_thread())
        n = 0
        while True:
            pulled.append(n)
            yield n
            n += 1

    pages = read_ahead(endless(), depth=2)
    assert [next(pages) for _ in range(3)] == [0, 1, 2]
    time.sleep(0.3)
    assert len(pulled) <= 3 + 2 + 1  # never more than `depth` pages ahead (plus the one being put)
    pages.close()
    fetcher[0].join(timeout=2)
    assert not fetcher[0].is_alive()  # closing the caller's iterator stops the fetching


def test_a_client_shared_by_resources_keeps_its_rate_limit_window_across_a_gap(scripted):
    """Resources run one after another: the second must not start from an empty window while the
    platform still counts the first one's calls (BigCommerce answered 429s when it did)."""
    from finance_pipeline.ingest.shared_client import SharedClient
    from finance_pipeline.platforms.base import Connection

    em = scripted([])
    made: list[ApiClient] = []

    def make(connection):
        made.append(client_for(em, limiter=SlidingWindow(limit=3, window_s=60, hold_until_release=True)))
        return made[-1]

    shared = SharedClient("test", Connection("test", em.base_url, {}, None), make)  # type: ignore[arg-type]
    with shared as client:  # the first resource spends the window's whole allowance
        for _ in range(3):
            assert client.get("a").status == 200
    assert not client._pool.is_open  # no resource running: its connections are closed
    with shared as again:  # the next resource gets the same client, whose window is still full
        assert again is client and again.limiter.try_acquire() > 0
    assert len(made) == 1


def test_a_closed_client_reopens_its_connections_on_the_next_call(scripted):
    em = scripted([])
    client = client_for(em)
    assert client.get("a").status == 200
    client.close()
    assert client.get("b").status == 200 and client.stats["requests"] == 2
    client.close()
    client.close()  # closing twice is harmless
