{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- One row per order line item.  WooCommerce amounts are ex tax: `subtotal` before the coupon,
    `total` after it, each with its tax (`subtotal_tax`, `total_tax`; rounded to the cent, unlike
    the raw `taxes[]` entries).  `restocked_units` is the line's `_restock_refunded_items` meta:
    units put back in stock by its refunds so far. -#}
{%- set line_shape = '[{"id": "BIGINT", "product_id": "BIGINT", "sku": "VARCHAR", "name": "VARCHAR",
    "quantity": "BIGINT", "subtotal": "VARCHAR", "subtotal_tax": "VARCHAR", "total": "VARCHAR",
    "total_tax": "VARCHAR", "meta_data": [{"key": "VARCHAR", "value": "VARCHAR"}]}]' -%}

with lines as (
    select id as order_id, upper(currency) as currency, {{ json_rows('line_items', line_shape) }} as li
    from {{ source('woocommerce', 'orders') }}
)

select
    order_id,
    cast({{ jget('li', 'id') }} as bigint) as line_id,
    cast({{ jget('li', 'product_id') }} as bigint) as product_id,
    cast({{ jget('li', 'sku') }} as varchar) as sku,
    cast({{ jget('li', 'name') }} as varchar) as title,
    cast({{ jget('li', 'quantity') }} as bigint) as quantity,
    currency,
    cast({{ jget('li', 'subtotal') }} as decimal(18, 2)) as subtotal,
    cast({{ jget('li', 'subtotal_tax') }} as decimal(18, 2)) as subtotal_tax,
    cast({{ jget('li', 'total') }} as decimal(18, 2)) as total,
    cast({{ jget('li', 'total_tax') }} as decimal(18, 2)) as total_tax,
    coalesce(cast({{ jfind(jlist('li', 'meta_data'), 'key', '_restock_refunded_items', 'value') }} as integer), 0) as restocked_units,
    'woocommerce' as channel
from lines
