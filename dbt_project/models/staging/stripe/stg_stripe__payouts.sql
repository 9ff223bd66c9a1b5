{{ config(enabled=('stripe' in var('channels'))) }}
{#- One row per Stripe payout to the bank. Stripe gives arrival_date as midnight UTC of the day. -#}
select
    id as payout_id,
    {{ minor_to_major('amount', 'currency') }} as amount,
    upper(currency) as currency,
    status,
    cast(created as timestamptz) as created_at,
    cast(timezone('UTC', arrival_date) as date) as arrival_date,
    balance_transaction as balance_transaction_id,
    method,
    type,
    'stripe' as channel
from {{ source('stripe', 'payouts') }}
