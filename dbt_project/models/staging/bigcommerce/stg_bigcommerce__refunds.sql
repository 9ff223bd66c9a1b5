{{ config(enabled=('bigcommerce' in var('channels'))) }}
{#- One row per refund (V3 payment actions), amounts positive.  The refund gives its total and
    tax; shipping refunded is the SHIPPING items' amount (ex tax), so goods ex tax are the rest. -#}
{%- set item_shape = '[{"item_type": "VARCHAR", "item_id": "BIGINT", "quantity": "BIGINT", "requested_amount": "VARCHAR"}]' -%}

with refunds as (
    select *, {{ json_parse('items', item_shape) }} as item_list
    from {{ source('bigcommerce', 'refunds') }}
),

amounts as (
    select
        *,
        cast(total_amount as decimal(18, 2)) as total,
        cast(coalesce(total_tax, '0') as decimal(18, 2)) as tax,
        cast(coalesce({{ jsum_where('item_list', 'requested_amount', 'decimal(18, 4)', 'item_type', 'SHIPPING') }}, 0)
             as decimal(18, 2)) as shipping
    from refunds
)

select
    id as refund_id,
    order_id,
    created as refunded_at,
    nullif(reason, '') as reason,
    total as total_amount,
    tax as tax_amount,
    shipping as shipping_amount,
    cast(total - tax - shipping as decimal(18, 2)) as goods_amount,
    cast(coalesce({{ jsum_where('item_list', 'quantity', 'bigint', 'item_type', 'PRODUCT') }}, 0) as integer) as units,
    {{ json_text('payments', '$[0].provider_id') }} as provider_id,
    'bigcommerce' as channel
from amounts
