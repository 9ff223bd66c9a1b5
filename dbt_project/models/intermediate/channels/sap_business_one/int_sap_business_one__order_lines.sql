{{ config(enabled=('sap_business_one' in var('channels'))) }}
{#- Invoice lines in the channel shape: ex-tax list amount (trade prices exclude VAT), no discount,
    the line's VAT; home = B1's local-currency LineTotal / TaxTotal. -#}
select
    'sap_business_one' as channel,
    cast(l.invoice_id as varchar) as order_id,
    l.line_id,
    l.sku,
    l.title,
    cast(null as varchar) as variant_title,
    cast(l.quantity as integer) as quantity,
    l.unit_price,
    l.currency,
    i.ordered_at,
    false as taxes_included,
    'trade' as customer_type,
    l.tax_rate,
    l.line_total as list_amount,
    l.line_total_home as list_amount_home,
    cast(0 as decimal(18, 2)) as discount,
    cast(0 as decimal(18, 2)) as discount_home,
    l.tax_amount,
    l.tax_amount_home
from {{ ref('stg_sap_business_one__invoice_lines') }} as l
join {{ ref('stg_sap_business_one__invoices') }} as i using (invoice_id)
