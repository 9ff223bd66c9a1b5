{{ config(enabled=('freshbooks' in var('channels'))) }}
{#- Customer payments the bookkeeper recorded against FreshBooks invoices: bank transfers, straight
    into the bank (no processor balance, no fee).  `amount` in the invoice currency; `amount_home`
    the sterling the bank credited (the note of a foreign-currency payment; the amount for GBP),
    so the difference against the invoice's own rate is realised FX.  A deleted payment is gone.
    Dated on the payment's date (12:00 UTC: the business date is the payment date). -#}
select
    'freshbooks' as channel,
    'bank_transfer' as processor,
    cast(p.payment_id as varchar) as payment_id,
    cast(p.invoice_id as varchar) as order_id,
    'succeeded' as status,
    cast(null as varchar) as failure_code,
    i.currency,
    p.amount,
    cast(case when i.currency = 'GBP' then p.amount else p.amount_gbp end as decimal(18, 2)) as amount_home,
    cast(0 as decimal(18, 2)) as fee_home,
    (cast(p.paid_on as timestamp) + interval '12 hours') at time zone 'UTC' as attempted_at,
    'INV-' || i.order_number as invoice_number,
    cast(0 as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    cast(null as varchar) as balance_transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_freshbooks__payments') }} as p
join {{ ref('stg_freshbooks__invoices') }} as i using (invoice_id)
where not p.is_deleted
