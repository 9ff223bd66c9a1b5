{{ config(enabled=('bigcommerce' in var('channels'))) }}
{#- Money the store's gateways (BigCommerce Payments, PayPal) hold for us: each captured
    purchase and each refund paid back, in GBP at the order's own rate.  BigCommerce exposes no
    gateway balance, fee or payout, so fees are zero and nothing is paid out here, which keeps the
    channel's clearing account (1387) equal to what the gateways hold. -#}
with purchases as (
    select t.*, o.fx_rate
    from {{ ref('stg_bigcommerce__transactions') }} as t
    join {{ ref('stg_bigcommerce__orders') }} as o using (order_id)
    where t.event = 'purchase' and t.status = 'ok'
)

select
    'bigcommerce' as channel,
    'charge-' || p.order_id as balance_transaction_id,
    cast(null as varchar) as payout_id,
    'charge' as type,
    'charge' as category,
    cast(p.order_id as varchar) as order_id,
    p.gateway_transaction_id as source_id,
    cast(p.transaction_id as varchar) as payment_id,
    'GBP' as currency,
    {{ money_div('p.amount', 'p.fx_rate') }} as amount,
    cast(0 as decimal(18, 2)) as fee,
    {{ money_div('p.amount', 'p.fx_rate') }} as net,
    p.created_at as occurred_at
from purchases as p

union all

select
    'bigcommerce' as channel,
    'refund-' || r.refund_id as balance_transaction_id,
    cast(null as varchar) as payout_id,
    'refund' as type,
    'refund' as category,
    cast(r.order_id as varchar) as order_id,
    cast(r.refund_id as varchar) as source_id,
    cast(p.transaction_id as varchar) as payment_id,
    'GBP' as currency,
    -{{ money_div('r.total_amount', 'p.fx_rate') }} as amount,
    cast(0 as decimal(18, 2)) as fee,
    -{{ money_div('r.total_amount', 'p.fx_rate') }} as net,
    r.refunded_at as occurred_at
from {{ ref('stg_bigcommerce__refunds') }} as r
join purchases as p using (order_id)
