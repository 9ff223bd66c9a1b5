{{ config(enabled=('stripe' in var('channels'))) }}
{#- Stripe charges, succeeded or failed; home amounts from the charge's balance transaction, which
    holds the processor's own conversion (scenario R5).  Failed charges have no home amount. -#}
with disputes as (
    select charge_id, max(status) as dispute_status
    from {{ ref('stg_stripe__disputes') }}
    group by charge_id
)

select
    'stripe' as channel,
    'stripe' as processor,
    c.charge_id as payment_id,
    cast(c.order_id as varchar) as order_id,
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
    c.balance_transaction_id,
    d.dispute_status
from {{ ref('stg_stripe__charges') }} as c
left join {{ ref('stg_stripe__balance_transactions') }} as bt using (balance_transaction_id)
left join disputes as d using (charge_id)
