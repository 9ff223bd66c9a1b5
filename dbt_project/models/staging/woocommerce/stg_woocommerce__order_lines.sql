{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- One row per order line item.  WooCommerce amounts are ex tax: `subtotal` before the coupon,
    `total` after it, each with its tax (`subtotal_tax`, `total_tax`; rounded to the cent, unlike
    the raw `taxes[]` entries).  `restocked_units` is the line's `_restock_refunded_items` meta:
    units put back in stock by its refunds so far. -#}
{%- set line_shape = '[{"id": "BIGINT", "product_id": "BIGINT", "sku": "VARCHAR", "name": "VARCHAR",
    "quantity": "BIGINT", "subtotal": "VARCHAR", "subtotal_tax": "VARCHAR", "total": "VARCHAR",
    "total_tax": "VARCHAR", "meta_data": [{"key": "VARCHAR", "value": "VARCHAR"}]}]' -%}

with lines as (
    select id as order_id, upper(currency) as currency, unnest(from_json(line_items, '{{ line_shape }}')) as li
    from {{ source('woocommerce', 'orders') }}
)

select
    order_id,
    li.id as line_id,
    li.product_id,
    li.sku,
    li.name as title,
    li.quantity,
    currency,
    cast(li.subtotal as decimal(18, 2)) as subtotal,
    cast(li.subtotal_tax as decimal(18, 2)) as subtotal_tax,
    cast(li.total as decimal(18, 2)) as total,
    cast(li.total_tax as decimal(18, 2)) as total_tax,
    coalesce(cast(list_filter(li.meta_data, lambda m: m.key = '_restock_refunded_items')[1].value as integer), 0) as restocked_units,
    'woocommerce' as channel
from lines
