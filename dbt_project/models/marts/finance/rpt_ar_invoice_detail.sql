{#- Accounts receivable, invoice by invoice, as of the report date: invoiced, credit notes
    (refunds on the invoiced order), paid (card payments less refunds of them), open amount in the
    invoice currency and in home currency at the invoice rate (R4), days past due and aging bucket,
    and the receivable the general ledger holds for the invoice (gl_ar_balance_home), which must
    equal open_amount_home. -#}
with credits as (
    select channel, order_id, sum(total_amount) as credit_amount, sum(total_amount_home) as credit_amount_home
    from {{ ref('int_refunds') }}
    group by channel, order_id
),

gl as (
    select document_channel as channel, document_id as order_id, sum(amount_home) as gl_ar_balance_home
    from {{ ref('fct_gl_entries') }}
    where account_code = '1200'
    group by document_channel, document_id
),

detail as (
    select
        i.invoice_number, i.channel, i.order_id, i.customer_id, i.customer_name, i.customer_country, i.currency,
        i.issued_on, i.due_on, i.terms_days, i.status, i.days_past_due, i.last_paid_at,
        i.total_amount as invoiced_amount,
        cast(coalesce(c.credit_amount, 0) as decimal(18, 2)) as credit_note_amount,
        i.paid_amount,
        cast(i.open_amount - case when i.status = 'voided' then 0 else coalesce(c.credit_amount, 0) end as decimal(18, 2)) as open_amount,
        i.total_amount_home as invoiced_amount_home,
        cast(coalesce(c.credit_amount_home, 0) as decimal(18, 2)) as credit_note_amount_home,
        cast(i.open_amount_home - case when i.status = 'voided' then 0 else coalesce(c.credit_amount_home, 0) end as decimal(18, 2)) as open_amount_home,
        cast(coalesce(g.gl_ar_balance_home, 0) as decimal(18, 2)) as gl_ar_balance_home
    from {{ ref('fct_invoices') }} as i
    left join credits as c using (channel, order_id)
    left join gl as g using (channel, order_id)
)

select
    *,
    case when status = 'voided' then 'voided' else {{ aging_bucket('open_amount_home', 'days_past_due') }} end as aging_bucket,
    {{ as_of_date() }} as as_of_date
from detail
