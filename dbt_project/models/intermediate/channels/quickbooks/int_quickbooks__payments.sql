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
    {{ bank_payment_columns('quickbooks',
        payment_id="case when a.applications > 1 then p.payment_id || '-' || a.invoice_id else p.payment_id end",
        order_id='a.invoice_id', currency='p.currency', amount='a.amount_applied',
        amount_home='cast(a.amount_applied * p.exchange_rate as decimal(18, 2))', attempted_at='p.created_at',
        invoice_number='a.doc_number', transaction_id='p.payment_ref_num') }}
from applied as a
join {{ ref('stg_quickbooks__payments') }} as p using (payment_id)

union all

select
    {{ bank_payment_columns('quickbooks',
        payment_id="'sr-' || r.sales_receipt_id", order_id='r.sales_receipt_id', currency='r.currency',
        amount='r.total_amount', amount_home='cast(r.total_amount * r.exchange_rate as decimal(18, 2))',
        attempted_at='r.created_at', invoice_number='r.doc_number', transaction_id='r.payment_ref_num') }}
from {{ ref('stg_quickbooks__sales_receipts') }} as r
where not r.is_published and not r.is_voided
