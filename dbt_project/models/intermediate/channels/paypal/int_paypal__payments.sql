{{ config(enabled=('paypal' in var('channels'))) }}
{#- PayPal captures: the buyer's payment and PayPal's fee (GBP account). -#}
with refunded as (
    select order_id, sum(amount) as refunded_amount from {{ ref('stg_paypal__refunds') }} group by order_id
)

select
    'paypal' as channel,
    'paypal' as processor,
    c.capture_id as payment_id,
    c.order_id,
    case when c.status in ('COMPLETED', 'PARTIALLY_REFUNDED', 'REFUNDED') then 'succeeded'
         when c.status in ('DECLINED', 'FAILED') then 'failed' else 'pending' end as status,
    cast(null as varchar) as failure_code,
    c.currency,
    c.amount,
    case when c.currency = '{{ var("home_currency") }}' then c.amount end as amount_home,
    case when c.currency = '{{ var("home_currency") }}' then c.fee end as fee_home,
    c.created_at as attempted_at,
    cast(null as varchar) as invoice_number,
    cast(coalesce(r.refunded_amount, 0) as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    c.capture_id as balance_transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_paypal__captures') }} as c
left join refunded as r using (order_id)
