{{ config(enabled=('zoho_books' in var('channels'))) }}
{#- Customer payments the bookkeeper recorded against the desk's invoices (bank transfers), one
    row per invoice a payment is applied to: in the invoice's currency, `amount_home` at the
    payment's own exchange rate (its date's rate: the difference against the invoice's rate is
    realised FX), no fee, no balance transaction — the GL posts them straight to the bank. -#}
with applied as (
    select a.payment_id, a.amount_applied, i.invoice_id, i.invoice_number,
           count(*) over (partition by a.payment_id) as applications
    from {{ ref('stg_zoho_books__payment_applications') }} as a
    join {{ ref('stg_zoho_books__invoices') }} as i
      on i.invoice_id = a.invoice_id or (a.invoice_id is null and i.invoice_number = a.invoice_number)
    where not i.is_published
)

select
    {{ bank_payment_columns('zoho_books',
        processor="case p.payment_mode when 'creditcard' then 'card' else 'bank_transfer' end",
        payment_id="case when a.applications > 1 then p.payment_id || '-' || a.invoice_id else p.payment_id end",
        order_id='a.invoice_id', currency='p.currency', amount='a.amount_applied',
        amount_home='cast(a.amount_applied * p.fx_rate as decimal(18, 2))', attempted_at='p.created_at',
        invoice_number='a.invoice_number', transaction_id='p.reference_number') }}
from applied as a
join {{ ref('stg_zoho_books__customer_payments') }} as p using (payment_id)
