"""Rate limiters, used on both sides of the wire.

Clients call `acquire()` (blocks until the call is allowed) before each request and `release()`
after it; emulators call `try_acquire()` (never blocks) and answer 429 when it returns a wait.
The same classes on both sides mean a client configured with a platform's documented limits
stays under the emulator enforcing those limits — which the tests check by counting requests the
emulators had to refuse.

Time is scaled by `time_scale` (a minute lasts 60/time_scale seconds) so tests can exercise
per-minute limits quickly; production uses 1.0.
"""
from __future__ import annotations

import collections
import threading
import time
from typing import Protocol


class Limiter(Protocol):
    def acquire(self) -> None: ...
    def release(self) -> None: ...
    def try_acquire(self) -> float: ...


class Unlimited:
    def acquire(self) -> None:
        return None

    def release(self) -> None:
        return None

    def try_acquire(self) -> float:
        return 0.0

    def observe(self, used: float, capacity: float) -> None:
        return None


class LeakyBucket:
    """Shopify-style leaky bucket: each call adds 1, the bucket drains at `leak_per_s`.

    A call is allowed while the bucket has room.  `level` is what Shopify reports in
    `X-Shopify-Shop-Api-Call-Limit` (used/capacity).
    """

    def __init__(self, capacity: float, leak_per_s: float, time_scale: float = 1.0, safety: float = 0.0) -> None:
        self.capacity = float(capacity)
        self.leak_per_s = float(leak_per_s) * time_scale
        self.safety = safety
        self._level = 0.0
        self._t = time.monotonic()
        self._lock = threading.Lock()

    def _drain(self, now: float) -> None:
        self._level = max(0.0, self._level - (now - self._t) * self.leak_per_s)
        self._t = now

    @property
    def level(self) -> float:
        with self._lock:
            self._drain(time.monotonic())
            return self._level

    def try_acquire(self) -> float:
        with self._lock:
            now = time.monotonic()
            self._drain(now)
            limit = self.capacity - self.safety
            if self._level + 1.0 <= limit + 1e-9:
                self._level += 1.0
                return 0.0
            return (self._level + 1.0 - limit) / self.leak_per_s

    def acquire(self) -> None:
        while (wait := self.try_acquire()) > 0:
            time.sleep(wait)

    def release(self) -> None:
        return None

    def observe(self, used: float, capacity: float) -> None:
        """Align with what the server says it has counted (it may have seen other clients)."""
        with self._lock:
            self._drain(time.monotonic())
            self._level = max(self._level, used)


class SlidingWindow:
    """At most `limit` calls in any rolling `window_s` seconds (Xero's 60/minute, 5000/day).

    Server side (the emulators) a call is counted at the moment it arrives.  Client side, pass
    `hold_until_release=True`: a call then occupies its place from `acquire()` until `release()`
    and is dated by when it *finished*.  The server saw it arrive somewhere in between, so the
    client's window always ends after the server's does, whatever the network latency was — a
    client that dated calls by when it sent them could be refused whenever an early call was
    slower to arrive than a later one (seen on a loaded CI machine with a compressed minute).
    """

    def __init__(self, limit: int, window_s: float, time_scale: float = 1.0, margin: float = 0.0,
                 *, hold_until_release: bool = False) -> None:
        self.limit = int(limit)
        self.window_s = window_s / time_scale * (1.0 + margin)
        self.hold_until_release = hold_until_release
        self._calls: collections.deque[float] = collections.deque()
        self._in_flight = 0
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._calls and now - self._calls[0] >= self.window_s:
            self._calls.popleft()

    def try_acquire(self) -> float:
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            if len(self._calls) + self._in_flight < self.limit:
                if self.hold_until_release:
                    self._in_flight += 1
                else:
                    self._calls.append(now)
                return 0.0
            if not self._calls:  # every place is held by a call still in flight
                return 0.005
            return self.window_s - (now - self._calls[0]) + 1e-4

    def acquire(self) -> None:
        while (wait := self.try_acquire()) > 0:
            time.sleep(wait)

    def release(self) -> None:
        if not self.hold_until_release:
            return None
        with self._lock:
            if self._in_flight > 0:
                self._in_flight -= 1
                self._calls.append(time.monotonic())
        return None

    def remaining(self) -> int:
        with self._lock:
            self._expire(time.monotonic())
            return self.limit - len(self._calls) - self._in_flight


class TokenBucket:
    """`rate_per_s` sustained with bursts up to `burst` (Stripe, Amazon's per-operation rates)."""

    def __init__(self, rate_per_s: float, burst: float, time_scale: float = 1.0) -> None:
        self.rate = rate_per_s * time_scale
        self.burst = float(burst)
        self._tokens = float(burst)
        self._t = time.monotonic()
        self._lock = threading.Lock()

    def try_acquire(self) -> float:
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._t) * self.rate)
            self._t = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate

    def acquire(self) -> None:
        while (wait := self.try_acquire()) > 0:
            time.sleep(wait)

    def release(self) -> None:
        return None


class ConcurrencyLimiter:
    """At most `limit` calls in flight (Xero's 5 concurrent calls per tenant)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._in_flight = 0
        self._cond = threading.Condition()

    def try_acquire(self) -> float:
        with self._cond:
            if self._in_flight < self.limit:
                self._in_flight += 1
                return 0.0
            return 0.05

    def acquire(self) -> None:
        with self._cond:
            while self._in_flight >= self.limit:
                self._cond.wait()
            self._in_flight += 1

    def release(self) -> None:
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            self._cond.notify()


class CompositeLimiter:
    """All limits must allow the call.  Acquired in order; refused try_acquire rolls back nothing
    that cannot be rolled back (window limits count the refused attempt, as real APIs do)."""

    def __init__(self, *limiters: Limiter) -> None:
        self.limiters = limiters

    def acquire(self) -> None:
        for limiter in self.limiters:
            limiter.acquire()

    def release(self) -> None:
        for limiter in self.limiters:
            limiter.release()

    def try_acquire(self) -> float:
        taken: list[Limiter] = []
        for limiter in self.limiters:
            wait = limiter.try_acquire()
            if wait > 0:
                for t in taken:
                    t.release()
                return wait
            taken.append(limiter)
        return 0.0

    def observe(self, used: float, capacity: float) -> None:
        for limiter in self.limiters:
            if hasattr(limiter, "observe"):
                limiter.observe(used, capacity)  # type: ignore[attr-defined]
