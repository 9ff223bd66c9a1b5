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
        unnest(from_json(refunds, '{{ refund_shape }}')) as r
    from {{ source('shopify', 'orders') }}
),

lines as (
    select order_id, currency, r.id as refund_id, unnest(r.refund_line_items) as rl
    from refunds
)

select
    rl.id as refund_line_id,
    refund_id,
    order_id,
    rl.line_item_id as line_id,
    rl.quantity,
    currency,
    cast(rl.subtotal_set.presentment_money.amount as decimal(18, 2)) as subtotal,
    cast(rl.total_tax_set.presentment_money.amount as decimal(18, 2)) as total_tax,
    cast(rl.subtotal_set.shop_money.amount as decimal(18, 2)) as subtotal_shop,
    cast(rl.total_tax_set.shop_money.amount as decimal(18, 2)) as total_tax_shop,
    rl.restock_type,
    'shopify' as channel
from lines
