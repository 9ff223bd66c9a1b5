{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- One row per refunded line item, amounts and quantity made positive; `line_id` is the order
    line it refunds (the refund item's `_refunded_item_id` meta). -#}
{%- set line_shape = '[{"id": "BIGINT", "sku": "VARCHAR", "quantity": "BIGINT", "total": "VARCHAR",
    "total_tax": "VARCHAR", "meta_data": [{"key": "VARCHAR", "value": "VARCHAR"}]}]' -%}

with lines as (
    select id as refund_id, parent_id as order_id, date_created_gmt as refunded_at,
           unnest(from_json(line_items, '{{ line_shape }}')) as li
    from {{ source('woocommerce', 'refunds') }}
)

select
    li.id as refund_line_id,
    refund_id,
    order_id,
    refunded_at,
    cast(list_filter(li.meta_data, lambda m: m.key = '_refunded_item_id')[1].value as bigint) as line_id,
    li.sku,
    -li.quantity as quantity,
    cast(-cast(li.total as decimal(18, 2)) as decimal(18, 2)) as total,
    cast(-cast(li.total_tax as decimal(18, 2)) as decimal(18, 2)) as total_tax,
    'woocommerce' as channel
from lines
