{{ config(enabled=('zoho_books' in var('channels'))) }}
{#- Invoice lines in the channel shape: prices ex VAT (`is_inclusive_tax` false), list amount =
    rate × quantity, the line discount as an amount; home amounts at the invoice's rate. -#}
select
    'zoho_books' as channel,
    l.invoice_id as order_id,
    l.line_id,
    l.sku,
    l.title,
    cast(null as varchar) as variant_title,
    cast(l.quantity as integer) as quantity,
    l.rate as unit_price,
    l.currency,
    i.created_at as ordered_at,
    i.taxes_included,
    'trade' as customer_type,
    l.tax_rate,
    cast(l.rate * l.quantity as decimal(18, 2)) as list_amount,
    cast(l.rate * l.quantity * i.fx_rate as decimal(18, 2)) as list_amount_home,
    l.discount,
    cast(l.discount * i.fx_rate as decimal(18, 2)) as discount_home,
    l.tax_amount,
    cast(l.tax_amount * i.fx_rate as decimal(18, 2)) as tax_amount_home
from {{ ref('stg_zoho_books__invoice_lines') }} as l
join {{ ref('stg_zoho_books__invoices') }} as i using (invoice_id)
where not i.is_published
