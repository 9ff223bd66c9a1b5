{{ config(enabled=('ebay' in var('channels'))) }}
{#- eBay order lines in the channel shape.  eBay UK prices include UK VAT, which eBay does not
    report: the VAT inside each line is worked out at the UK standard rate (curtains, fabric and
    fittings are all standard-rated).  On eBay US the line's tax is what eBay collected and remits
    (marketplace facilitator): the buyer paid it, the business does not owe it
    (`marketplace_tax_amount`). -#}
{%- set uk_vat = '0.20' -%}
select
    'ebay' as channel,
    l.order_id,
    l.line_id,
    l.sku,
    l.title,
    cast(null as varchar) as variant_title,
    l.quantity,
    {{ money_div('l.line_item_cost', 'l.quantity') }} as unit_price,
    o.currency,
    o.ordered_at,
    o.taxes_included,
    'retail' as customer_type,
    case when o.taxes_included then cast({{ uk_vat }} as decimal(9, 6)) end as tax_rate,
    l.line_item_cost as list_amount,
    l.line_item_cost_home as list_amount_home,
    l.discount,
    l.discount_home,
    case when o.taxes_included
         then {{ money_div('(l.line_item_cost - l.discount) * ' ~ uk_vat, '1 + ' ~ uk_vat) }}
         else l.marketplace_tax + l.seller_tax end as tax_amount,
    case when o.taxes_included
         then {{ money_div('(l.line_item_cost_home - l.discount_home) * ' ~ uk_vat, '1 + ' ~ uk_vat) }}
         else l.marketplace_tax_home + l.seller_tax_home end as tax_amount_home,
    l.marketplace_tax as marketplace_tax_amount,
    l.marketplace_tax_home as marketplace_tax_amount_home
from {{ ref('stg_ebay__order_lines') }} as l
join {{ ref('stg_ebay__orders') }} as o using (order_id)
