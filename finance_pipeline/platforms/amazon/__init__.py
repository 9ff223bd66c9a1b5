"""Amazon Selling Partner API: a marketplace channel (Amazon.co.uk and Amazon.com, FBA).

- `world.py`: the channel's sandbox world (orders, order items, financial events, event groups).
- `emulator.py`: Orders API v2026-01-01 and v0, Finances API v0, LWA token endpoint, per-operation
  token buckets.
- `client.py`: `live_connection`, `make_client` (LWA refresh-token exchange, `x-amz-access-token`,
  one token bucket per operation).
- `source.py`: the dlt source (`amazon_source`).
- `oracle.py`: the channel's truth in the canonical shape.
"""
from __future__ import annotations

from decimal import Decimal

# Marketplaces of the sandbox business: key -> (marketplace id, name, currency, order id prefix).
MARKETPLACES = {
    "UK": ("A1F83G8C2ARO7P", "Amazon.co.uk", "GBP", "202"),
    "US": ("ATVPDKIKX0DER", "Amazon.com", "USD", "112"),
}
MARKETPLACE_BY_ID = {v[0]: k for k, v in MARKETPLACES.items()}
MARKETPLACE_BY_NAME = {v[1]: k for k, v in MARKETPLACES.items()}

# Documented usage plans (requests per second, burst) per operation.
RATE_LIMITS: dict[str, tuple[float, int]] = {
    "searchOrders": (0.0056, 20),      # Orders v2026-01-01
    "getOrder2026": (0.5, 30),
    "getOrders": (0.0167, 20),         # Orders v0 (deprecated, removal 2027-03-27)
    "getOrder": (0.5, 30),
    "getOrderItems": (0.5, 30),
    "listFinancialEventGroups": (0.5, 30),
    "listFinancialEventsByGroupId": (0.5, 30),
    "listFinancialEvents": (0.5, 30),
}

# Amazon lets nothing newer than two minutes before the request be asked for (LastUpdatedBefore,
# PostedBefore, …); the emulator shows the world as of clock - VISIBLE_DELAY and so does the oracle.
VISIBLE_DELAY_S = 120
ACCESS_TOKEN_LIFETIME_S = 3600

ZERO = Decimal("0.00")
