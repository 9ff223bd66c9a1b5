"""One API client shared by every resource of a dlt source instance.

A source's resources run one after another (or interleaved) but must share one client — one view
of the platform's rate limit, one token — which is made on first use and closed when the last
resource using it finishes. Built without a connection (Dagster reads resource names at definition
time), it fails only when a resource actually runs.
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
            self.client.close()  # type: ignore[attr-defined]
            self.client = None
