{{ config(enabled=('bigcommerce' in var('channels'))) }}
{#- BigCommerce order products in the channel shape.  US prices are ex tax: the list amount is
    total_ex_tax, the discount the line's applied discounts, the tax BigCommerce's on the line;
    `tax_rate` is that tax over the discounted amount (BigCommerce gives rates only through
    /v2/orders/{id}/taxes, not read here).  Home amounts: each amount / the order's fx_rate. -#}
select
    'bigcommerce' as channel,
    cast(l.order_id as varchar) as order_id,
    cast(l.line_id as varchar) as line_id,
    l.sku,
    l.title,
    cast(null as varchar) as variant_title,
    l.quantity,
    l.price_ex_tax as unit_price,
    o.currency,
    o.ordered_at,
    false as taxes_included,
    'retail' as customer_type,
    cast(case when l.total_ex_tax - l.discount <> 0
              then {{ round_double('cast(l.total_tax as double precision) / cast(l.total_ex_tax - l.discount as double precision)', 4) }} end
         as decimal(12, 6)) as tax_rate,
    l.total_ex_tax as list_amount,
    {{ money_div('l.total_ex_tax', 'o.fx_rate') }} as list_amount_home,
    l.discount,
    {{ money_div('l.discount', 'o.fx_rate') }} as discount_home,
    l.total_tax as tax_amount,
    {{ money_div('l.total_tax', 'o.fx_rate') }} as tax_amount_home
from {{ ref('stg_bigcommerce__order_lines') }} as l
join {{ ref('stg_bigcommerce__orders') }} as o using (order_id)
