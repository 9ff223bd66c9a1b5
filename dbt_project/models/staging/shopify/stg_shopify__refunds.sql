{{ config(enabled=('shopify' in var('channels'))) }}
{#- One row per refund, from the refunds embedded in each order.
    Shipping refunded comes from the refund's `shipping_refund` order adjustments, which Shopify
    sends as negative amounts ex tax with their tax apart: here both are positive.
    `transaction_amount` is what went back to the buyer (successful refund transactions), in the
    presentment currency. -#}
{%- set bag = '{"shop_money": {"amount": "VARCHAR"}, "presentment_money": {"amount": "VARCHAR"}}' -%}
{%- set refund_shape = '[{"id": "BIGINT", "created_at": "VARCHAR", "note": "VARCHAR", "restock": "BOOLEAN",
    "transactions": [{"kind": "VARCHAR", "status": "VARCHAR", "amount": "VARCHAR"}],
    "order_adjustments": [{"kind": "VARCHAR", "amount_set": ' ~ bag ~ ', "tax_amount_set": ' ~ bag ~ '}]}]' -%}

with refunds as (
    select
        id as order_id,
        upper(presentment_currency) as currency,
        {{ json_rows('refunds', refund_shape) }} as r
    from {{ source('shopify', 'orders') }}
),

shaped as (
    select
        order_id,
        currency,
        r,
        {{ jfilter(jlist('r', 'order_adjustments'), {'kind': 'shipping_refund'}) }} as shipping_adjustments
    from refunds
)

select
    cast({{ jget('r', 'id') }} as bigint) as refund_id,
    order_id,
    cast({{ jget('r', 'created_at') }} as timestamptz) as refunded_at,
    cast({{ jget('r', 'note') }} as varchar) as note,
    coalesce(cast({{ jget('r', 'restock') }} as boolean), false) as restock,
    currency,
    cast(-coalesce({{ jsum('shipping_adjustments', 'amount_set.presentment_money.amount', 'decimal(18, 2)') }}, 0)
         as decimal(18, 2)) as shipping_amount,
    cast(-coalesce({{ jsum('shipping_adjustments', 'tax_amount_set.presentment_money.amount', 'decimal(18, 2)') }}, 0)
         as decimal(18, 2)) as shipping_tax,
    cast(-coalesce({{ jsum('shipping_adjustments', 'amount_set.shop_money.amount', 'decimal(18, 2)') }}, 0)
         as decimal(18, 2)) as shipping_amount_shop,
    cast(-coalesce({{ jsum('shipping_adjustments', 'tax_amount_set.shop_money.amount', 'decimal(18, 2)') }}, 0)
         as decimal(18, 2)) as shipping_tax_shop,
    cast(coalesce({{ jsum(jfilter(jlist('r', 'transactions'), {'kind': 'refund', 'status': 'success'}),
                          'amount', 'decimal(18, 2)') }}, 0) as decimal(18, 2)) as transaction_amount,
    'shopify' as channel
from shaped
