{{ config(enabled=('square' in var('channels'))) }}
{#- Square payouts to the bank, dated by their arrival. -#}
select
    'square' as channel,
    payout_id,
    cast(null as varchar) as balance_transaction_id,
    currency,
    amount,
    case status when 'PAID' then 'paid' when 'SENT' then 'in_transit' when 'FAILED' then 'failed'
                else lower(status) end as status,
    arrival_date as payout_date,
    created_at
from {{ ref('stg_square__payouts') }}
