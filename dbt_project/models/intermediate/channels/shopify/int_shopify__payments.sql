{{ config(enabled=('shopify' in var('channels'))) }}
{#- Shopify Payments charges (amounts in the GBP settlement currency), and the tenders of gift
    cards the shop sold (scenario S12): processor `gift_card`, no fee, no balance transaction — the
    money was received when the card was sold, so they settle the order out of the gift card
    liability.  Their home amount is shop money at the order's own conversion. -#}
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

union all

select
    'shopify' as channel,
    'gift_card' as processor,
    cast(t.transaction_id as varchar) as payment_id,
    cast(t.order_id as varchar) as order_id,
    case when t.status = 'success' then 'succeeded' else t.status end as status,
    cast(null as varchar) as failure_code,
    t.currency,
    t.amount,
    case when t.currency = o.shop_currency then t.amount
         else cast({{ money_div('t.amount * o.total_price_shop', 'o.total_price') }} as decimal(18, 2)) end as amount_home,
    cast(0 as decimal(18, 2)) as fee_home,
    t.processed_at as attempted_at,
    cast(null as varchar) as invoice_number,
    cast(0 as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    cast(null as varchar) as balance_transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_shopify__transactions') }} as t
join {{ ref('stg_shopify__orders') }} as o using (order_id)
where t.gateway = 'gift_card' and t.kind = 'sale'
