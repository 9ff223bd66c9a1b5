{#- Every payout from every processor to the bank. -#}
select
    'shopify' as channel,
    cast(payout_id as varchar) as payout_id,
    cast(null as varchar) as balance_transaction_id,
    currency,
    amount,
    lower(status) as status,
    payout_date,
    cast(null as timestamptz) as created_at
from {{ ref('stg_shopify__payouts') }}
union all by name
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
