{{ config(enabled=('magento' in var('channels'))) }}
{#- One row per order item.  Catalogue prices include VAT: `row_total_incl_tax` is the listed
    amount, `discount_amount` (positive on items) the VAT-inclusive discount, `tax_amount` the VAT
    after the discount; `_base` twins in the base currency. -#}
{%- set item_shape = '[{"item_id": "BIGINT", "sku": "VARCHAR", "name": "VARCHAR", "qty_ordered": "DECIMAL(18,4)",
    "price_incl_tax": "VARCHAR", "row_total_incl_tax": "VARCHAR", "base_row_total_incl_tax": "VARCHAR",
    "discount_amount": "VARCHAR", "base_discount_amount": "VARCHAR", "tax_amount": "VARCHAR",
    "base_tax_amount": "VARCHAR", "tax_percent": "VARCHAR", "qty_refunded": "DECIMAL(18,4)"}]' -%}

with items as (
    select entity_id as order_id, upper(order_currency_code) as currency,
           unnest(from_json(items, '{{ item_shape }}')) as i
    from {{ source('magento', 'orders') }}
)

select
    order_id,
    i.item_id as line_id,
    i.sku,
    i.name as title,
    cast(i.qty_ordered as integer) as quantity,
    currency,
    cast(i.price_incl_tax as decimal(18, 2)) as price_incl_tax,
    cast(i.row_total_incl_tax as decimal(18, 2)) as row_total_incl_tax,
    cast(i.base_row_total_incl_tax as decimal(18, 2)) as row_total_incl_tax_base,
    cast(i.discount_amount as decimal(18, 2)) as discount_amount,
    cast(i.base_discount_amount as decimal(18, 2)) as discount_amount_base,
    cast(i.tax_amount as decimal(18, 2)) as tax_amount,
    cast(i.base_tax_amount as decimal(18, 2)) as tax_amount_base,
    cast(cast(i.tax_percent as decimal(12, 6)) / 100 as decimal(12, 6)) as tax_rate,
    cast(i.qty_refunded as integer) as quantity_refunded,
    'magento' as channel
from items
