"""Threshold alerts: rules over the marts, deduplicated, recorded in ops.alerts and the run log."""
