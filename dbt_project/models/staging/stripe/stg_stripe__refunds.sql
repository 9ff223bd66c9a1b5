{{ config(enabled=('stripe' in var('channels'))) }}
{#- One row per Stripe refund. -#}
select
    id as refund_id,
    charge as charge_id,
    {{ minor_to_major('amount', 'currency') }} as amount,
    upper(currency) as currency,
    status,
    reason,
    balance_transaction as balance_transaction_id,
    cast(created as timestamptz) as created_at,
    'stripe' as channel
from {{ source('stripe', 'refunds') }}
