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
           {{ json_rows('items', item_shape) }} as i
    from {{ source('magento', 'orders') }}
)

select
    order_id,
    cast({{ jget('i', 'item_id') }} as bigint) as line_id,
    cast({{ jget('i', 'sku') }} as varchar) as sku,
    cast({{ jget('i', 'name') }} as varchar) as title,
    cast(cast({{ jget('i', 'qty_ordered') }} as decimal(18, 4)) as integer) as quantity,
    currency,
    cast({{ jget('i', 'price_incl_tax') }} as decimal(18, 2)) as price_incl_tax,
    cast({{ jget('i', 'row_total_incl_tax') }} as decimal(18, 2)) as row_total_incl_tax,
    cast({{ jget('i', 'base_row_total_incl_tax') }} as decimal(18, 2)) as row_total_incl_tax_base,
    cast({{ jget('i', 'discount_amount') }} as decimal(18, 2)) as discount_amount,
    cast({{ jget('i', 'base_discount_amount') }} as decimal(18, 2)) as discount_amount_base,
    cast({{ jget('i', 'tax_amount') }} as decimal(18, 2)) as tax_amount,
    cast({{ jget('i', 'base_tax_amount') }} as decimal(18, 2)) as tax_amount_base,
    cast(cast({{ jget('i', 'tax_percent') }} as decimal(12, 6)) / 100 as decimal(12, 6)) as tax_rate,
    cast(cast({{ jget('i', 'qty_refunded') }} as decimal(18, 4)) as integer) as quantity_refunded,
    'magento' as channel
from items
