{{ config(enabled=('shopify' in var('channels'))) }}
{#- One row per Shopify Payments balance transaction (settlement currency GBP): a charge or a
    refund with its processing fee.  `payout_id` is set once the payout carrying it has been
    paid out (`payout_status` 'paid'); until then it is null and the status 'pending'. -#}
select
    id as balance_transaction_id,
    payout_id,
    lower(payout_status) as payout_status,
    lower(type) as type,
    upper(currency) as currency,
    cast(amount as decimal(18, 2)) as amount,
    cast(coalesce(fee, '0') as decimal(18, 2)) as fee,
    cast(net as decimal(18, 2)) as net,
    source_id,
    source_type,
    source_order_id,
    source_order_transaction_id,
    processed_at,
    'shopify' as channel
from {{ source('shopify', 'balance_transactions') }}
