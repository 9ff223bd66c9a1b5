{{ config(enabled=('stripe' in var('channels'))) }}
{#- One row per movement of the Stripe balance, in the settlement currency (the converted amount
    is the truth for a foreign-currency charge, scenario R5). -#}
select
    id as balance_transaction_id,
    type,
    reporting_category,
    source as source_id,
    {{ minor_to_major('amount', 'currency') }} as amount,
    {{ minor_to_major('fee', 'currency') }} as fee,
    {{ minor_to_major('net', 'currency') }} as net,
    upper(currency) as currency,
    exchange_rate,
    status,
    description,
    cast(created as timestamptz) as created_at,
    cast(available_on as timestamptz) as available_on,
    'stripe' as channel
from {{ source('stripe', 'balance_transactions') }}
