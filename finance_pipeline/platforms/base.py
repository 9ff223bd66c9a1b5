"""What every platform module shares: how a client finds its base URL and credentials."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from finance_pipeline.settings import Secret, Settings


@dataclass(frozen=True)
class Connection:
    """Base URL + credentials for one platform, from the sandbox emulators or from live settings.

    The same client code runs in both modes; only this object differs.
    """

    platform: str
    base_url: str
    credentials: Mapping[str, Secret | str] = field(default_factory=dict)
    settings: Settings = field(default_factory=Settings)

    def secret(self, key: str) -> str:
        value = self.credentials[key]
        return value.value if isinstance(value, Secret) else value

    def get(self, key: str, default: str | None = None) -> str | None:
        if key not in self.credentials:
            return default
        return self.secret(key)
