{#- What each trade customer owes us, as of the report date, aged by days past the due date
    (scenario S5): current / 1-30 / 31-60 / 61-90 / over 90, in home currency at the invoice
    rate (R4).  Overpayments are unapplied credits (P9), kept out of the buckets.  Built on the
    per-invoice detail (rpt_ar_invoice_detail): open = invoiced - credit notes - paid.
    DSO = open home amount / home amount invoiced in the last 90 days x 90. -#}
with open_invoices as (
    select *, case when aging_bucket = 'voided' then null else aging_bucket end as bucket,
           issued_on > {{ as_of_date() }} - 90 as issued_last_90_days
    from {{ ref('rpt_ar_invoice_detail') }}
    where status <> 'voided'
)

select
    customer_id,
    max(customer_name) as customer_name,
    max(customer_country) as customer_country,
    max(currency) as currency,
    count(*) as invoice_count,
    count(*) filter (where open_amount <> 0) as open_invoice_count,
    cast(sum(invoiced_amount) as decimal(18, 2)) as invoiced_amount,
    cast(sum(credit_note_amount) as decimal(18, 2)) as credit_note_amount,
    cast(sum(paid_amount) as decimal(18, 2)) as paid_amount,
    cast(sum(open_amount) as decimal(18, 2)) as open_amount,
    cast(sum(open_amount_home) as decimal(18, 2)) as open_amount_home,
    cast(coalesce(sum(open_amount_home) filter (where bucket = 'current'), 0) as decimal(18, 2)) as current_home,
    cast(coalesce(sum(open_amount_home) filter (where bucket = '1-30'), 0) as decimal(18, 2)) as days_1_30_home,
    cast(coalesce(sum(open_amount_home) filter (where bucket = '31-60'), 0) as decimal(18, 2)) as days_31_60_home,
    cast(coalesce(sum(open_amount_home) filter (where bucket = '61-90'), 0) as decimal(18, 2)) as days_61_90_home,
    cast(coalesce(sum(open_amount_home) filter (where bucket = '90+'), 0) as decimal(18, 2)) as days_over_90_home,
    cast(coalesce(sum(open_amount_home) filter (where bucket = 'credit'), 0) as decimal(18, 2)) as unapplied_credit_home,
    case
        when count(*) filter (where bucket = '90+') > 0 then '90+'
        when count(*) filter (where bucket = '61-90') > 0 then '61-90'
        when count(*) filter (where bucket = '31-60') > 0 then '31-60'
        when count(*) filter (where bucket = '1-30') > 0 then '1-30'
        when count(*) filter (where bucket = 'current') > 0 then 'current'
    end as oldest_bucket,
    coalesce(max(days_past_due) filter (where open_amount > 0), 0) as max_days_past_due,
    max(last_paid_at) as last_payment_at,
    {{ business_date('max(last_paid_at)') }} as last_payment_date,
    cast(coalesce(sum(open_amount_home) filter (where bucket not in ('current', 'credit')), 0) as decimal(18, 2)) as overdue_amount_home,
    case when sum(invoiced_amount_home) filter (where issued_last_90_days) > 0
         then {{ money_div('sum(open_amount_home) * 90', 'sum(invoiced_amount_home) filter (where issued_last_90_days)') }}
    end as dso_days,
    {{ as_of_date() }} as as_of_date
from open_invoices
group by customer_id
