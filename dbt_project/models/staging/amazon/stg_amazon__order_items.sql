{{ config(enabled=('amazon' in var('channels', {}))) }}
{#- One row per order item.  item_price = unit price x quantity as listed (VAT-inclusive on the
    European marketplaces), item_tax = all tax the buyer paid on it. -#}
{%- set item_shape = '[{"order_item_id": "VARCHAR", "seller_sku": "VARCHAR", "title": "VARCHAR",
        "quantity": "BIGINT", "unit_price": "VARCHAR", "item_price": "VARCHAR", "item_tax": "VARCHAR",
        "tax_model": "VARCHAR"}]' %}
with items as (
    select o.order_id, {{ json_rows('o.order_items', item_shape) }} as i
    from {{ source('amazon', 'orders') }} as o
)

select
    order_id,
    cast({{ jget('i', 'order_item_id') }} as varchar) as order_item_id,
    cast({{ jget('i', 'seller_sku') }} as varchar) as sku,
    cast({{ jget('i', 'title') }} as varchar) as title,
    cast({{ jget('i', 'quantity') }} as bigint) as quantity,
    cast({{ jget('i', 'unit_price') }} as decimal(18, 2)) as unit_price,
    cast({{ jget('i', 'item_price') }} as decimal(18, 2)) as item_price,
    cast({{ jget('i', 'item_tax') }} as decimal(18, 2)) as item_tax,
    cast({{ jget('i', 'tax_model') }} as varchar) as tax_model,
    coalesce(cast({{ jget('i', 'tax_model') }} as varchar) = 'MarketplaceFacilitator', false) as marketplace_facilitator,
    'amazon' as channel
from items
