{{ config(enabled=('bigcommerce' in var('channels'))) }}
{#- Each order's card or PayPal payment: its `purchase` transaction (BigCommerce Payments or
    PayPal), succeeded when the gateway answered ok, failed when declined.  BigCommerce exposes no
    gateway fee or payout, so fee_home is null; the capture's balance movement is
    int_bigcommerce__balance_transactions. -#}
with refunded as (
    select order_id, sum(total_amount) as refunded_amount
    from {{ ref('stg_bigcommerce__refunds') }}
    group by order_id
)

select
    'bigcommerce' as channel,
    t.gateway as processor,
    cast(t.transaction_id as varchar) as payment_id,
    cast(t.order_id as varchar) as order_id,
    case when t.status = 'ok' then 'succeeded' else 'failed' end as status,
    case when t.status <> 'ok' then 'card_declined' end as failure_code,
    o.currency,
    t.amount,
    {{ money_div('t.amount', 'o.fx_rate') }} as amount_home,
    cast(null as decimal(18, 2)) as fee_home,
    t.created_at as attempted_at,
    cast(null as varchar) as invoice_number,
    cast(case when t.status = 'ok' then coalesce(r.refunded_amount, 0) else 0 end as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    case when t.status = 'ok' then 'charge-' || t.order_id end as balance_transaction_id,
    t.gateway_transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_bigcommerce__transactions') }} as t
join {{ ref('stg_bigcommerce__orders') }} as o using (order_id)
left join refunded as r using (order_id)
where t.event = 'purchase'
