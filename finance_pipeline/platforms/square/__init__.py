"""Square (Connect API v2): the London showroom's point of sale — Payments, Refunds, Orders,
Payouts with their entries, and webhooks.  Constants shared by the emulator, client and source."""

API_VERSION = "2025-08-20"  # sent as `Square-Version` on every call (the spec snapshot we follow)
LIVE_BASE_URL = "https://connect.squareup.com"
SANDBOX_BASE_URL = "https://connect.squareupsandbox.com"

# Square does not publish its limits ("design for 429 + backoff").  The sandbox enforces this many
# requests per second per access token; the client paces itself at 80 % of it.
EMULATED_RATE_PER_S = 20
CLIENT_RATE_SHARE = 0.8

CURRENCY = "GBP"
LOCATION_NAME = "London Showroom"
LOCATION_TIMEZONE = "Europe/London"
