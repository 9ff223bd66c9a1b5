"""Webhook deliveries: a receiver that verifies each platform's signature and keeps every accepted
event in a durable inbox (SQLite in WAL mode, or `ops.webhook_inbox` on the Postgres warehouse)
before answering 2xx; a Dagster sensor turns the inbox into targeted incremental runs.  Platforms
plug in through their registry entry only."""
