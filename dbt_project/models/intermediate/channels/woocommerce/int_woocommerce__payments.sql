{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- The payment recorded on each WooCommerce order (its gateway: Stripe card or PayPal), one
    attempt per order: succeeded once paid (date_paid), failed when the order failed.  Orders
    still pending have made no attempt yet.  WooCommerce exposes no gateway fee or payout, so
    fee_home is null; the capture's balance movement is int_woocommerce__balance_transactions. -#}
with refunded as (
    select order_id, sum(amount) as refunded_amount
    from {{ ref('stg_woocommerce__refunds') }}
    group by order_id
)

select
    'woocommerce' as channel,
    o.payment_method as processor,
    cast(o.order_id as varchar) as payment_id,
    cast(o.order_id as varchar) as order_id,
    case when o.paid_at is not null then 'succeeded' else 'failed' end as status,
    case when o.paid_at is null then 'payment_failed' end as failure_code,
    o.currency,
    o.total as amount,
    cast(o.total * o.fx_rate as decimal(18, 2)) as amount_home,
    cast(null as decimal(18, 2)) as fee_home,
    coalesce(o.paid_at, o.updated_at) as attempted_at,
    cast(null as varchar) as invoice_number,
    cast(coalesce(r.refunded_amount, 0) as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    case when o.paid_at is not null then 'charge-' || o.order_id end as balance_transaction_id,
    o.transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_woocommerce__orders') }} as o
left join refunded as r using (order_id)
where o.paid_at is not null or o.status = 'failed'
