"""Webhook deliveries: a receiver that verifies each platform's signature and keeps every accepted
event in a durable inbox (SQLite, WAL) before answering 2xx; a Dagster sensor turns the inbox into
targeted incremental runs.  Platforms plug in through their registry entry only."""
