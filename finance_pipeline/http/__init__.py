"""The one shared HTTP layer: every platform client and every publisher goes through it."""
from finance_pipeline.http.client import ApiClient, ApiError, RetryPolicy
from finance_pipeline.http.ratelimit import (
    CompositeLimiter,
    ConcurrencyLimiter,
    LeakyBucket,
    SlidingWindow,
    Unlimited,
)

__all__ = [
    "ApiClient",
    "ApiError",
    "RetryPolicy",
    "CompositeLimiter",
    "ConcurrencyLimiter",
    "LeakyBucket",
    "SlidingWindow",
    "Unlimited",
]
