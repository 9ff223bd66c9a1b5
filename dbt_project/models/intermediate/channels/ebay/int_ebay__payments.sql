{{ config(enabled=('ebay' in var('channels'))) }}
{#- The buyer's payment of each eBay order (eBay managed payments), as eBay settles it to the
    seller: `amount` is the seller's part in the buyer's currency (what the buyer paid less the tax
    eBay collected to remit itself), `amount_home` and `fee_home` the GBP gross and final value fee
    of the order's SALE transaction in the seller's Finances ledger (null until it is listed). -#}
with refunded as (
    select order_id, sum(amount) as refunded_amount
    from {{ ref('stg_ebay__refunds') }}
    group by order_id
),

sales as (
    select order_id, transaction_id, gross, fee
    from {{ ref('stg_ebay__transactions') }}
    where transaction_type = 'SALE'
)

select
    'ebay' as channel,
    'ebay_managed_payments' as processor,
    o.payment_reference_id as payment_id,
    o.order_id,
    case o.payment_status when 'PAID' then 'succeeded' when 'FAILED' then 'failed' else lower(o.payment_status) end as status,
    cast(null as varchar) as failure_code,
    o.currency,
    cast(o.payment_amount - o.marketplace_tax as decimal(18, 2)) as amount,
    s.gross as amount_home,
    s.fee as fee_home,
    o.paid_at as attempted_at,
    cast(null as varchar) as invoice_number,
    cast(coalesce(r.refunded_amount, 0) as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    s.transaction_id as balance_transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_ebay__orders') }} as o
left join sales as s using (order_id)
left join refunded as r using (order_id)
where o.payment_reference_id is not null
