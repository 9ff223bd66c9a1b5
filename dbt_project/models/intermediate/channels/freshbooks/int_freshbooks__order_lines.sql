{{ config(enabled=('freshbooks' in var('channels'))) }}
{#- FreshBooks invoice lines in the channel shape (tax-exclusive, no discounts).  Catalogue goods
    keep their SKU (category and COGS from the catalogue); services — making-up per width,
    fitting per hour — have no SKU and carry `category = 'services'` (no COGS).  Home amounts at
    the invoice's sterling rate, each rounded on its own. -#}
select
    'freshbooks' as channel,
    cast(l.invoice_id as varchar) as order_id,
    l.line_id,
    l.sku,
    l.name as title,
    cast(null as varchar) as variant_title,
    l.quantity,
    l.unit_cost as unit_price,
    i.currency,
    i.created_at as ordered_at,
    false as taxes_included,
    'trade' as customer_type,
    l.tax_rate,
    l.amount as list_amount,
    cast(l.amount * i.fx_rate as decimal(18, 2)) as list_amount_home,
    cast(0 as decimal(18, 2)) as discount,
    cast(0 as decimal(18, 2)) as discount_home,
    l.tax_amount,
    cast(l.tax_amount * i.fx_rate as decimal(18, 2)) as tax_amount_home,
    case when l.sku is null then 'services' end as category
from {{ ref('stg_freshbooks__invoice_lines') }} as l
join {{ ref('stg_freshbooks__invoices') }} as i using (invoice_id)
