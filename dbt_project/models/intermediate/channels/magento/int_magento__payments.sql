{{ config(enabled=('magento' in var('channels'))) }}
{#- The payment on each Magento order through the store's gateway (Braintree card, PayPal
    Express), captured when the order was placed: succeeded when paid, failed when the order was
    canceled with nothing paid; an order still awaiting payment has no attempt yet.  Magento
    exposes no gateway fee. -#}
select
    'magento' as channel,
    o.payment_method as processor,
    cast(o.order_id as varchar) as payment_id,
    cast(o.order_id as varchar) as order_id,
    case when o.is_paid then 'succeeded' else 'failed' end as status,
    case when not o.is_paid then 'payment_canceled' end as failure_code,
    o.currency,
    o.grand_total as amount,
    o.grand_total_base as amount_home,
    cast(null as decimal(18, 2)) as fee_home,
    case when o.is_paid then o.ordered_at else o.updated_at end as attempted_at,
    cast(null as varchar) as invoice_number,
    o.total_refunded as refunded_amount,
    false as is_disputed,
    case when o.is_paid then 'charge-' || o.order_id end as balance_transaction_id,
    o.transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_magento__orders') }} as o
where o.is_paid or o.state = 'canceled'
