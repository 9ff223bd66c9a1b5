{{ config(enabled=('shopify' in var('channels'))) }}
{#- One row per refunded line item.  `subtotal` is the refunded goods amount as Shopify reports
    it — tax-inclusive when the order's prices include tax (`taxes_included`) — and `total_tax`
    the tax in it or on top of it.  Presentment currency, `_shop` in shop money (GBP). -#}
{%- set bag = '{"shop_money": {"amount": "VARCHAR"}, "presentment_money": {"amount": "VARCHAR"}}' -%}
{%- set refund_shape = '[{"id": "BIGINT", "refund_line_items": [{"id": "BIGINT", "line_item_id": "BIGINT",
    "quantity": "BIGINT", "restock_type": "VARCHAR", "subtotal_set": ' ~ bag ~ ', "total_tax_set": ' ~ bag ~ '}]}]' -%}

with refunds as (
    select
        id as order_id,
        upper(presentment_currency) as currency,
        {{ json_rows('refunds', refund_shape) }} as r
    from {{ source('shopify', 'orders') }}
),

lines as (
    select
        order_id,
        currency,
        cast({{ jget('r', 'id') }} as bigint) as refund_id,
        {{ jlist_rows(jlist('r', 'refund_line_items')) }} as rl
    from refunds
)

select
    cast({{ jget('rl', 'id') }} as bigint) as refund_line_id,
    refund_id,
    order_id,
    cast({{ jget('rl', 'line_item_id') }} as bigint) as line_id,
    cast({{ jget('rl', 'quantity') }} as bigint) as quantity,
    currency,
    cast({{ jget('rl', 'subtotal_set.presentment_money.amount') }} as decimal(18, 2)) as subtotal,
    cast({{ jget('rl', 'total_tax_set.presentment_money.amount') }} as decimal(18, 2)) as total_tax,
    cast({{ jget('rl', 'subtotal_set.shop_money.amount') }} as decimal(18, 2)) as subtotal_shop,
    cast({{ jget('rl', 'total_tax_set.shop_money.amount') }} as decimal(18, 2)) as total_tax_shop,
    cast({{ jget('rl', 'restock_type') }} as varchar) as restock_type,
    'shopify' as channel
from lines
