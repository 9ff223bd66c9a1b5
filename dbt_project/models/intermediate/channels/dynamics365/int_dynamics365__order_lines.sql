{{ config(enabled=('dynamics365' in var('channels'))) }}
{#- The goods (Item) lines of Business Central invoices in the channel shape: ex-tax prices, the
    listed amount = amount after discount + discount, BC's tax per line; home amounts at the
    invoice date's GBP rate, each rounded on its own. -#}
select
    'dynamics365' as channel,
    l.invoice_id as order_id,
    l.line_id,
    l.object_number as sku,
    l.description as title,
    cast(null as varchar) as variant_title,
    l.quantity,
    l.unit_price,
    i.currency,
    i.ordered_at,
    false as taxes_included,
    'trade' as customer_type,
    l.tax_rate,
    cast(l.amount_ex_tax + l.discount_amount as decimal(18, 2)) as list_amount,
    cast((l.amount_ex_tax + l.discount_amount) * i.fx_rate as decimal(18, 2)) as list_amount_home,
    l.discount_amount as discount,
    cast(l.discount_amount * i.fx_rate as decimal(18, 2)) as discount_home,
    l.tax_amount,
    cast(l.tax_amount * i.fx_rate as decimal(18, 2)) as tax_amount_home
from {{ ref('stg_dynamics365__invoice_lines') }} as l
join {{ ref('int_dynamics365__rated_invoices') }} as i using (invoice_id)
where l.kind = 'goods'
