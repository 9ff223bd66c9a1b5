{{ config(enabled=('paypal' in var('channels'))) }}
{#- PayPal withdrawals to the bank (T0400): the payouts. -#}
select
    'paypal' as channel,
    transaction_id as payout_id,
    transaction_id as balance_transaction_id,
    currency,
    -amount as amount,
    case status when 'S' then 'paid' when 'P' then 'in_transit' when 'D' then 'failed' when 'V' then 'reversed' end as status,
    {{ business_date('occurred_at') }} as payout_date,
    occurred_at as created_at
from {{ ref('stg_paypal__transactions') }}
where event_code = 'T0400'
