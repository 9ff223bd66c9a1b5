{#- Every payment attempt from every processor.
    Shopify Payments: each charge balance transaction (amounts in the GBP settlement currency).
    Stripe: each charge, succeeded or failed; home amounts from its balance transaction, which
    holds the processor's own conversion (scenario R5). Failed charges have no home amount. -#}
with shopify as (
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
        cast(bt.balance_transaction_id as varchar) as balance_transaction_id
    from {{ ref('stg_shopify__balance_transactions') }} as bt
    where bt.type = 'charge'
),

stripe_disputes as (
    select charge_id, max(status) as dispute_status
    from {{ ref('stg_stripe__disputes') }}
    group by charge_id
),

stripe as (
    select
        'stripe' as channel,
        'stripe' as processor,
        c.charge_id as payment_id,
        c.order_id,
        c.status,
        c.failure_code,
        c.currency,
        c.amount,
        bt.amount as amount_home,
        bt.fee as fee_home,
        c.created_at as attempted_at,
        c.invoice_number,
        c.amount_refunded as refunded_amount,
        coalesce(c.disputed, false) as is_disputed,
        c.balance_transaction_id
    from {{ ref('stg_stripe__charges') }} as c
    left join {{ ref('stg_stripe__balance_transactions') }} as bt using (balance_transaction_id)
)

select
    p.*,
    d.dispute_status
from (select * from shopify union all by name select * from stripe) as p
left join stripe_disputes as d on p.channel = 'stripe' and d.charge_id = p.payment_id
