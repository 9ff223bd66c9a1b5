{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- One row per refund (`shop_order_refund`).  `amount` is positive as the API gives it; the
    shipping refunded is turned positive from the refund's (negative) shipping lines. -#}
{%- set ship_shape = '[{"total": "VARCHAR", "total_tax": "VARCHAR"}]' -%}

select
    id as refund_id,
    parent_id as order_id,
    date_created_gmt as refunded_at,
    cast(amount as decimal(18, 2)) as amount,
    nullif(reason, '') as reason,
    refunded_payment,
    cast(-coalesce({{ jsum(json_parse('shipping_lines', ship_shape), 'total', 'decimal(18, 2)') }}, 0)
         as decimal(18, 2)) as shipping_amount,
    cast(-coalesce({{ jsum(json_parse('shipping_lines', ship_shape), 'total_tax', 'decimal(18, 2)') }}, 0)
         as decimal(18, 2)) as shipping_tax,
    'woocommerce' as channel
from {{ source('woocommerce', 'refunds') }}
