{{ config(enabled=('shopify' in var('channels'))) }}
{#- Shopify Payments charges: amounts in the GBP settlement currency. -#}
select
    'shopify' as channel,
    'shopify_payments' as processor,
    cast(coalesce(bt.source_order_transaction_id, bt.balance_transaction_id) as varchar) as payment_id,
    cast(bt.source_order_id as varchar) as order_id,
    'succeeded' as status,
    cast(null as varchar) as failure_code,
    bt.currency,
    bt.amount,
    bt.amount as amount_home,
    bt.fee as fee_home,
    bt.processed_at as attempted_at,
    cast(null as varchar) as invoice_number,
    cast(0 as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    cast(bt.balance_transaction_id as varchar) as balance_transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_shopify__balance_transactions') }} as bt
where bt.type = 'charge'
