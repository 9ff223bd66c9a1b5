"""Magento / Adobe Commerce (REST `V1`): the business's UK web store, a sales channel."""
