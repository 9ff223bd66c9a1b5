{{ config(enabled=('lightspeed' in var('channels'))) }}
{#- Tenders taken on Lightspeed sales.  Cash goes to the till (processor 'cash'); cards go through
    Lightspeed Payments, whose fees and payouts the Retail API does not expose (fee unknown). -#}
select
    'lightspeed' as channel,
    case when p.payment_type = 'cash' then 'cash' else 'lightspeed_payments' end as processor,
    p.sale_payment_id as payment_id,
    p.sale_id as order_id,
    'succeeded' as status,
    cast(null as varchar) as failure_code,
    s.currency,
    p.amount,
    p.amount as amount_home,
    cast(null as decimal(18, 2)) as fee_home,
    p.created_at as attempted_at,
    cast(null as varchar) as invoice_number,
    cast(0 as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    cast(null as varchar) as balance_transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_lightspeed__sale_payments') }} as p
join {{ ref('stg_lightspeed__sales') }} as s using (sale_id)
where not s.is_return and p.amount > 0 and not p.archived
