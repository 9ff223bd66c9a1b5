"""PayPal: Checkout (Orders v2), Transaction Search (reporting) and webhooks."""
