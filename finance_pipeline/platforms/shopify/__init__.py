"""Shopify: REST Admin API client and dlt source, sandbox emulator, webhook verification.

The shop's REST API version used by the client is `API_VERSION`; the emulator accepts any
`YYYY-MM` version (and `unstable`), like Shopify does for supported versions.
"""

API_VERSION = "2026-10"
