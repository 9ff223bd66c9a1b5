"""Xero (Accounting API 2.0) as a destination: emulator, OAuth2 client, trade-invoice publisher, webhooks."""
