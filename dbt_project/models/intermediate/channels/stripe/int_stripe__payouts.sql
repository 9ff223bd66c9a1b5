{{ config(enabled=('stripe' in var('channels'))) }}
{#- Stripe payouts to the bank, dated by their arrival. -#}
select
    'stripe' as channel,
    payout_id,
    balance_transaction_id,
    currency,
    amount,
    lower(status) as status,
    arrival_date as payout_date,
    created_at
from {{ ref('stg_stripe__payouts') }}
