"""The list of platforms and what each provides.

Adding a platform = a folder under `platforms/`, a staging folder in dbt, and a line here.
Entries name their pieces by import path so importing the registry stays cheap.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Platform:
    name: str
    title: str
    role: Literal["source", "destination"]
    emulator: str  # "module:Class" of its sandbox emulator
    live_connection: str  # "module:function(settings) -> Connection" reading env credentials
    source: str | None = None  # "module:function(connection | None, quarantine | None) -> DltSource"
    webhook_verifier: str | None = None  # "module:function(headers, body, secret) -> bool"

    @staticmethod
    def load(ref: str) -> Any:
        module, _, attr = ref.partition(":")
        return getattr(importlib.import_module(module), attr)


PLATFORMS: tuple[Platform, ...] = (
    Platform(
        name="shopify", title="Shopify", role="source",
        emulator="finance_pipeline.platforms.shopify.emulator:ShopifyEmulator",
        live_connection="finance_pipeline.platforms.shopify.client:live_connection",
        source="finance_pipeline.platforms.shopify.source:shopify_source",
        webhook_verifier="finance_pipeline.platforms.shopify.webhooks:verify",
    ),
    Platform(
        name="stripe", title="Stripe", role="source",
        emulator="finance_pipeline.platforms.stripe.emulator:StripeEmulator",
        live_connection="finance_pipeline.platforms.stripe.client:live_connection",
        source="finance_pipeline.platforms.stripe.source:stripe_source",
        webhook_verifier="finance_pipeline.platforms.stripe.webhooks:verify",
    ),
    Platform(
        name="xero", title="Xero", role="destination",
        emulator="finance_pipeline.platforms.xero.emulator:XeroEmulator",
        live_connection="finance_pipeline.platforms.xero.client:live_connection",
        webhook_verifier="finance_pipeline.platforms.xero.webhooks:verify",
    ),
)

BY_NAME = {p.name: p for p in PLATFORMS}


def sources() -> list[Platform]:
    return [p for p in PLATFORMS if p.role == "source"]


def get(name: str) -> Platform:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown platform {name!r}; known: {', '.join(BY_NAME)}") from None
