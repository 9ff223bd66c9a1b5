"""Lightspeed Retail POS (R-Series) API V3: the Manchester showroom's point of sale.

Constants shared by the emulator, client and source.  Facts: ../../../shared/platforms/lightspeed.md
(R-Series is the primary Lightspeed retail API; X-Series is not used here)."""

LIVE_API_URL = "https://api.lightspeedapp.com"
LIVE_TOKEN_URL = "https://cloud.lightspeedapp.com/auth/oauth/token"

# Leaky bucket per account (community/SDK documented defaults): 60 units, draining 1 unit/s;
# GET costs 1, writes 10.  Headers: X-LS-API-Bucket-Level "used/size", X-LS-API-Drip-Rate.
BUCKET_SIZE = 60
DRIP_PER_S = 1.0
BUCKET_HEADER = "x-ls-api-bucket-level"
DRIP_HEADER = "x-ls-api-drip-rate"
MAX_LIMIT = 100
ACCESS_TOKEN_TTL_S = 1800  # what the sandbox's token endpoint answers in `expires_in`

SALE_RELATIONS = ["SaleLines", "SaleLines.Item", "SalePayments", "SalePayments.PaymentType", "Customer"]
