"""Dynamics 365 Business Central: the US trade desk's ledger (a sales channel and a publish destination)."""
