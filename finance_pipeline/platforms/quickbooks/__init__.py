"""QuickBooks Online (Accounting API v3): destination for trade invoices and payments, source of the owner's own entries."""
