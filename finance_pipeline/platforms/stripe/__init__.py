"""Stripe: charges, refunds, disputes, balance transactions and payouts (a source).

- `emulator.py`: the sandbox world over Stripe's REST v1 wire format, as of the sandbox clock.
- `client.py`: `live_connection`, `make_client` (Bearer key, pinned `Stripe-Version`, limiter).
- `source.py`: the dlt source (`stripe_source`), created-cursors plus the `/v1/events` change feed.
- `webhooks.py`: `Stripe-Signature` verification.
"""

# The API version this project is written against (the one stripe-python 16.1 pins).  The client
# sends it on every request; the emulator renders it and stamps it on events.
API_VERSION = "2026-10-28.endive"

# Documented global rate limits (requests per second).
LIVE_RATE_PER_S = 100
TEST_RATE_PER_S = 25

# Stripe keeps events for 30 days; older ones can be neither listed nor retrieved.
EVENT_RETENTION_S = 30 * 86400

# Currencies Stripe expresses in whole units (no minor unit); everything else is in cents.
ZERO_DECIMAL_CURRENCIES = frozenset({
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
})
