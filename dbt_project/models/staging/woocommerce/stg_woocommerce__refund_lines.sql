{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- One row per refunded line item, amounts and quantity made positive; `line_id` is the order
    line it refunds (the refund item's `_refunded_item_id` meta). -#}
{%- set line_shape = '[{"id": "BIGINT", "sku": "VARCHAR", "quantity": "BIGINT", "total": "VARCHAR",
    "total_tax": "VARCHAR", "meta_data": [{"key": "VARCHAR", "value": "VARCHAR"}]}]' -%}

with lines as (
    select id as refund_id, parent_id as order_id, date_created_gmt as refunded_at,
           {{ json_rows('line_items', line_shape) }} as li
    from {{ source('woocommerce', 'refunds') }}
)

select
    cast({{ jget('li', 'id') }} as bigint) as refund_line_id,
    refund_id,
    order_id,
    refunded_at,
    cast({{ jfind(jlist('li', 'meta_data'), 'key', '_refunded_item_id', 'value') }} as bigint) as line_id,
    cast({{ jget('li', 'sku') }} as varchar) as sku,
    -cast({{ jget('li', 'quantity') }} as bigint) as quantity,
    cast(-cast({{ jget('li', 'total') }} as decimal(18, 2)) as decimal(18, 2)) as total,
    cast(-cast({{ jget('li', 'total_tax') }} as decimal(18, 2)) as decimal(18, 2)) as total_tax,
    'woocommerce' as channel
from lines
