"""Notification sinks for alert events: Slack (dagster-slack / Slack Web API), email (SMTP) and a
generic signed webhook; the `ops.alerts` table and the Dagster UI always get every event."""
