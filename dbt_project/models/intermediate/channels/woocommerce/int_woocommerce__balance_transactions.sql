{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- Money the store's gateways (Stripe card, PayPal) hold for us: each paid order's capture and
    each refund paid back, in GBP at the order's own rate.  WooCommerce exposes no gateway
    balance, fee or payout, so these movements are derived from the order's payment (`date_paid`,
    `transaction_id`) and its refunds (`refunded_payment`); fees are zero and nothing is paid out
    here, which keeps the channel's clearing account equal to what the gateways hold. -#}
with orders as (
    select * from {{ ref('stg_woocommerce__orders') }}
)

select
    'woocommerce' as channel,
    'charge-' || o.order_id as balance_transaction_id,
    cast(null as varchar) as payout_id,
    'charge' as type,
    'charge' as category,
    cast(o.order_id as varchar) as order_id,
    o.transaction_id as source_id,
    cast(o.order_id as varchar) as payment_id,
    'GBP' as currency,
    cast(o.total * o.fx_rate as decimal(18, 2)) as amount,
    cast(0 as decimal(18, 2)) as fee,
    cast(o.total * o.fx_rate as decimal(18, 2)) as net,
    o.paid_at as occurred_at
from orders as o
where o.paid_at is not null

union all

select
    'woocommerce' as channel,
    'refund-' || r.refund_id as balance_transaction_id,
    cast(null as varchar) as payout_id,
    'refund' as type,
    'refund' as category,
    cast(r.order_id as varchar) as order_id,
    cast(r.refund_id as varchar) as source_id,
    cast(r.order_id as varchar) as payment_id,
    'GBP' as currency,
    -cast(r.amount * o.fx_rate as decimal(18, 2)) as amount,
    cast(0 as decimal(18, 2)) as fee,
    -cast(r.amount * o.fx_rate as decimal(18, 2)) as net,
    r.refunded_at as occurred_at
from {{ ref('stg_woocommerce__refunds') }} as r
join orders as o using (order_id)
where r.refunded_payment
