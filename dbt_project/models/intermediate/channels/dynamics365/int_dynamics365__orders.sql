{{ config(enabled=('dynamics365' in var('channels'))) }}
{#- Business Central posted sales invoices in the channel shape: one trade "order" per invoice,
    numbered by the invoice number (USI-…, so the mart's invoice number is INV-USI-…), the
    customer's master account number as customer id, a cancelled invoice void.  Freight is the
    invoice's freight G/L account lines; home amounts at the company's GBP rate of the invoice date. -#}
with freight as (
    select invoice_id, sum(amount_ex_tax) as shipping_amount, sum(tax_amount) as shipping_tax
    from {{ ref('stg_dynamics365__invoice_lines') }}
    where kind = 'shipping'
    group by invoice_id
)

select
    'dynamics365' as channel,
    i.invoice_id as order_id,
    i.invoice_number as order_number,
    i.customer_number as customer_id,
    i.customer_email,
    i.customer_name as customer_company,
    'trade' as customer_type,
    i.currency,
    i.ordered_at,
    i.updated_at,
    cast(case when i.is_cancelled then i.updated_at end as timestamptz) as cancelled_at,
    i.status as platform_status,
    i.is_cancelled as is_void,
    false as taxes_included,
    i.tax_treatment,
    i.country,
    i.region,
    cast(i.terms_days as integer) as terms_days,
    i.due_date as due_on,
    cast(coalesce(f.shipping_amount, 0) as decimal(18, 2)) as shipping_amount,
    cast(coalesce(f.shipping_amount, 0) * i.fx_rate as decimal(18, 2)) as shipping_amount_home,
    cast(coalesce(f.shipping_tax, 0) as decimal(18, 2)) as shipping_tax,
    cast(coalesce(f.shipping_tax, 0) * i.fx_rate as decimal(18, 2)) as shipping_tax_home
from {{ ref('int_dynamics365__rated_invoices') }} as i
left join freight as f using (invoice_id)
