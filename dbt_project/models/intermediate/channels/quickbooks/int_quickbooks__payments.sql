{{ config(enabled=('quickbooks' in var('channels'))) }}
{#- Money the trade counter received, straight into the bank: payments (ReceivePayment) recorded
    against its invoices, one row per invoice a payment is applied to, and each sales receipt that
    is not voided (paid when raised, `payment_id` = `sr-<Id>`).  In the document's currency,
    `amount_home` at the payment's own exchange rate (its date's: the difference against the
    invoice's rate is realised FX), no fee, no balance transaction. -#}
with applied as (
    select a.payment_id, a.amount_applied, i.invoice_id, i.doc_number,
           count(*) over (partition by a.payment_id) as applications
    from {{ ref('stg_quickbooks__payment_applications') }} as a
    join {{ ref('stg_quickbooks__invoices') }} as i on i.invoice_id = a.invoice_id
    where not i.is_published
)

select
    'quickbooks' as channel,
    'bank_transfer' as processor,
    case when a.applications > 1 then p.payment_id || '-' || a.invoice_id else p.payment_id end as payment_id,
    a.invoice_id as order_id,
    'succeeded' as status,
    cast(null as varchar) as failure_code,
    p.currency,
    a.amount_applied as amount,
    cast(a.amount_applied * p.exchange_rate as decimal(18, 2)) as amount_home,
    cast(0 as decimal(18, 2)) as fee_home,
    p.created_at as attempted_at,
    'INV-' || a.doc_number as invoice_number,
    cast(0 as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    cast(null as varchar) as balance_transaction_id,
    p.payment_ref_num as transaction_id,
    cast(null as varchar) as dispute_status
from applied as a
join {{ ref('stg_quickbooks__payments') }} as p using (payment_id)

union all

select
    'quickbooks',
    'bank_transfer',
    'sr-' || r.sales_receipt_id,
    r.sales_receipt_id,
    'succeeded',
    cast(null as varchar),
    r.currency,
    r.total_amount,
    cast(r.total_amount * r.exchange_rate as decimal(18, 2)),
    cast(0 as decimal(18, 2)),
    r.created_at,
    'INV-' || r.doc_number,
    cast(0 as decimal(18, 2)),
    false,
    cast(null as varchar),
    r.payment_ref_num,
    cast(null as varchar)
from {{ ref('stg_quickbooks__sales_receipts') }} as r
where not r.is_published and not r.is_voided
