"""eBay: Sell Fulfillment API (orders) and Sell Finances API (transactions, payouts)."""
