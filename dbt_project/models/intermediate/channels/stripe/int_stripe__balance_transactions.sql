{{ config(enabled=('stripe' in var('channels'))) }}
{#- Stripe balance transactions (settlement currency) with the payout that carried them. -#}
select
    'stripe' as channel,
    bt.balance_transaction_id,
    pbt.payout_id,
    bt.type,
    bt.reporting_category as category,
    cast(null as varchar) as order_id,
    bt.source_id,
    bt.currency,
    bt.amount,
    bt.fee,
    bt.net,
    bt.created_at as occurred_at
from {{ ref('stg_stripe__balance_transactions') }} as bt
left join {{ ref('stg_stripe__payout_balance_transactions') }} as pbt using (balance_transaction_id)
