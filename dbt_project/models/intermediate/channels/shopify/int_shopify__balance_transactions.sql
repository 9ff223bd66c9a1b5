{{ config(enabled=('shopify' in var('channels'))) }}
{#- Shopify Payments balance transactions with the payout that carried them. -#}
select
    'shopify' as channel,
    cast(balance_transaction_id as varchar) as balance_transaction_id,
    cast(payout_id as varchar) as payout_id,
    type,
    type as category,
    cast(source_order_id as varchar) as order_id,
    cast(source_id as varchar) as source_id,
    currency,
    amount,
    fee,
    net,
    processed_at as occurred_at
from {{ ref('stg_shopify__balance_transactions') }}
