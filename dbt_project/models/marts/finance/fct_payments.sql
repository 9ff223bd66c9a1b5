{#- One row per payment attempt (succeeded or failed), every processor, with the order or
    invoice it pays and its customer. -#}
select
    p.channel,
    p.payment_id,
    p.processor,
    coalesce(p.order_id, o2.order_id) as order_id,
    p.invoice_number,
    coalesce(o.customer_id, o2.customer_id) as customer_id,
    coalesce(o.customer_type, o2.customer_type) as customer_type,
    p.status,
    p.failure_code,
    p.currency,
    p.amount,
    p.amount_home,
    p.fee_home,
    p.refunded_amount,
    p.is_disputed,
    p.dispute_status,
    p.attempted_at,
    p.balance_transaction_id
from {{ ref('int_payments') }} as p
left join {{ ref('int_orders') }} as o
    on p.channel = 'shopify' and o.channel = 'shopify' and o.order_id = p.order_id
left join {{ ref('int_orders') }} as o2
    on p.channel <> 'shopify' and o2.channel = 'shopify'
    and o2.order_number = '#' || replace(p.invoice_number, 'INV-', '')
