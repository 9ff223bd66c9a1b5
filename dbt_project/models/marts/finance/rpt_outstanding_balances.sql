{#- What each trade customer owes us, as of the report date, aged by days past the due date
    (scenario S5): current / 1-30 / 31-60 / 61-90 / over 90, in home currency at the invoice
    rate (R4).  Overpayments are unapplied credits (P9), kept out of the buckets. -#}
with open_invoices as (
    select
        *,
        case
            when open_amount_home <= 0 then 'credit'
            when days_past_due <= 0 then 'current'
            when days_past_due <= 30 then '1-30'
            when days_past_due <= 60 then '31-60'
            when days_past_due <= 90 then '61-90'
            else '90+'
        end as bucket
    from {{ ref('fct_invoices') }}
    where status <> 'voided'
)

select
    customer_id,
    max(customer_name) as customer_name,
    max(customer_country) as customer_country,
    max(currency) as currency,
    count(*) as invoice_count,
    count(*) filter (where open_amount <> 0) as open_invoice_count,
    cast(sum(total_amount) as decimal(18, 2)) as invoiced_amount,
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
    {{ as_of_date() }} as as_of_date
from open_invoices
group by customer_id
