"""WooCommerce (REST API `wc/v3`): the business's EU web store, a sales channel."""
