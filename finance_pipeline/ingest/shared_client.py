"""One API client shared by every resource of a dlt source instance.

A source's resources run one after another (or interleaved) but must share one client — one view
of the platform's rate limit, one token — which is made on first use.  When no resource is using it
its connections are closed, but the client itself is kept for the source instance: a resource that
starts after a gap (refunds after orders) reuses it, so its rate-limit window still holds the calls
made a moment ago.  A new client there would start from an empty window and could spend a quota
the platform still counts as used (seen: BigCommerce answering 429 between two resources).
Built without a connection (Dagster reads resource names at definition time), it fails only when a
resource actually runs.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from finance_pipeline.platforms.base import Connection

C = TypeVar("C")


class SharedClient(Generic[C]):
    def __init__(self, platform: str, connection: Connection | None, make_client: Callable[[Connection], C]) -> None:
        self.platform = platform
        self.connection = connection
        self.make_client = make_client
        self.client: C | None = None
        self.users = 0

    def __enter__(self) -> C:
        if self.connection is None:
            raise RuntimeError(f"{self.platform}_source() was built without a connection (definition time only); "
                               f"pass finance_pipeline.sandbox.runtime.connection(settings, '{self.platform}') "
                               "to run it")
        if self.client is None:
            self.client = self.make_client(self.connection)
        self.users += 1
        return self.client

    def __exit__(self, *exc: Any) -> None:
        self.users -= 1
        if self.users == 0 and self.client is not None:
            # connections only (the client's and its token client's): the next call reopens them
            self.client.close()  # type: ignore[attr-defined]
            close_auth = getattr(getattr(self.client, "auth", None), "close", None)
            if close_auth is not None:
                close_auth()
