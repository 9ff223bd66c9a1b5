"""BigCommerce (Management REST API, Orders V2 / payment actions V3): the business's US web store.

Only the webhook verifier is here so far (see webhooks.py); the store is not registered as a
channel yet (no platform.py)."""
