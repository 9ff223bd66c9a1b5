{{ config(enabled=('paypal' in var('channels'))) }}
{#- The PayPal balance's movements (captures, refunds, anything else but withdrawals), each
    carried by the first withdrawal after it: the business sweeps the whole balance to the bank,
    so a withdrawal is the net of every movement since the one before. -#}
with moves as (
    select * from {{ ref('stg_paypal__transactions') }} where event_code <> 'T0400'
),

withdrawals as (
    select transaction_id as payout_id, currency, occurred_at
    from {{ ref('stg_paypal__transactions') }} where event_code = 'T0400'
)

select
    'paypal' as channel,
    m.transaction_id as balance_transaction_id,
    w.payout_id,
    case when m.event_code = 'T0006' then 'charge' when m.event_code = 'T1107' then 'refund' else 'adjustment' end as type,
    lower(m.event_code) as category,
    o.order_id,
    m.transaction_id as source_id,
    m.currency,
    m.amount,
    m.fee,
    m.net,
    m.occurred_at
from moves as m
{{ asof_left_join('withdrawals', 'w', 'w.currency = m.currency and w.occurred_at > m.occurred_at', 'w.occurred_at') }}
left join {{ ref('stg_paypal__captures') }} as c on c.capture_id = case when m.event_code = 'T0006' then m.transaction_id else m.reference_id end
left join {{ ref('stg_paypal__orders') }} as o on o.order_id = coalesce(c.order_id, case when m.reference_type = 'ODR' then m.reference_id end)
