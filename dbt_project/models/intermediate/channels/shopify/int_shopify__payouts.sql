{{ config(enabled=('shopify' in var('channels'))) }}
{#- Shopify Payments payouts to the bank. -#}
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
