{{ config(enabled=('magento' in var('channels'))) }}
{#- Money the store's gateways hold for us: each order's capture and each credit memo paid back, in
    the base currency (GBP).  Magento exposes no gateway fee or payout; fees are zero and nothing is
    paid out here, so the channel's clearing account equals what the gateways hold. -#}
select
    'magento' as channel,
    'charge-' || o.order_id as balance_transaction_id,
    cast(null as varchar) as payout_id,
    'charge' as type,
    'charge' as category,
    cast(o.order_id as varchar) as order_id,
    o.transaction_id as source_id,
    cast(o.order_id as varchar) as payment_id,
    o.base_currency as currency,
    o.grand_total_base as amount,
    cast(0 as decimal(18, 2)) as fee,
    o.grand_total_base as net,
    o.ordered_at as occurred_at
from {{ ref('stg_magento__orders') }} as o
where o.is_paid

union all

select
    'magento' as channel,
    'refund-' || c.refund_id as balance_transaction_id,
    cast(null as varchar) as payout_id,
    'refund' as type,
    'refund' as category,
    cast(c.order_id as varchar) as order_id,
    cast(c.refund_id as varchar) as source_id,
    cast(c.order_id as varchar) as payment_id,
    'GBP' as currency,
    -c.grand_total_base as amount,
    cast(0 as decimal(18, 2)) as fee,
    -c.grand_total_base as net,
    c.refunded_at as occurred_at
from {{ ref('stg_magento__creditmemos') }} as c
