"""BigCommerce (Management REST API, Orders V2 / payment actions V3): the business's US web store."""
