"""Shared ingest mechanics: Arrow pages for dlt, quarantine of bad records, connections."""
