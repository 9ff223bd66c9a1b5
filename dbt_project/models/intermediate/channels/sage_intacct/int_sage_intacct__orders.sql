{{ config(enabled=('sage_intacct' in var('channels'))) }}
{#- Sage Intacct Sales Invoices as trade orders (docs/architecture.md, "Ledger channels"): the order
    number is the document number (SI-…), freight lines are the shipping, home amounts at the
    document's own exchange rate (each amount rounded on its own), a cancelled document is void. -#}
with freight as (
    select
        record_no,
        sum(amount) as shipping_amount,
        sum(cast(round(amount * d.exchange_rate, 2) as decimal(18, 2))) as shipping_amount_home,
        sum(tax_amount) as shipping_tax,
        sum(cast(round(tax_amount * d.exchange_rate, 2) as decimal(18, 2))) as shipping_tax_home
    from {{ ref('stg_sage_intacct__document_lines') }}
    join {{ ref('stg_sage_intacct__documents') }} as d using (record_no)
    where is_freight
    group by record_no
)
select
    'sage_intacct' as channel,
    cast(d.record_no as varchar) as order_id,
    d.document_number as order_number,
    d.customer_id,
    d.customer_email,
    d.customer_name as customer_company,
    'trade' as customer_type,
    d.currency,
    d.created_at as ordered_at,
    d.updated_at,
    cast(case when d.is_void then d.updated_at end as timestamptz) as cancelled_at,
    d.state as platform_status,
    d.is_void,
    false as taxes_included,
    d.tax_treatment,
    d.country,
    d.region,
    d.terms_days,
    d.due_on,
    cast(coalesce(f.shipping_amount, 0) as decimal(18, 2)) as shipping_amount,
    cast(coalesce(f.shipping_amount_home, 0) as decimal(18, 2)) as shipping_amount_home,
    cast(coalesce(f.shipping_tax, 0) as decimal(18, 2)) as shipping_tax,
    cast(coalesce(f.shipping_tax_home, 0) as decimal(18, 2)) as shipping_tax_home
from {{ ref('stg_sage_intacct__documents') }} as d
left join freight as f using (record_no)
