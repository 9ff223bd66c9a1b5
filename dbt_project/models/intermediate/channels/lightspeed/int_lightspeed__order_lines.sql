{{ config(enabled=('lightspeed' in var('channels'))) }}
{#- Lightspeed sale lines in the channel shape; GBP, so home amounts equal sale amounts. -#}
select
    'lightspeed' as channel,
    l.sale_id as order_id,
    l.sale_line_id as line_id,
    l.sku,
    l.description as title,
    cast(null as varchar) as variant_title,
    l.quantity,
    l.unit_price,
    s.currency,
    s.created_at as ordered_at,
    l.is_tax_inclusive as taxes_included,
    'retail' as customer_type,
    l.tax_rate,
    l.unit_price * l.quantity as list_amount,
    l.unit_price * l.quantity as list_amount_home,
    l.discount,
    l.discount as discount_home,
    l.tax as tax_amount,
    l.tax as tax_amount_home
from {{ ref('stg_lightspeed__sale_lines') }} as l
join {{ ref('stg_lightspeed__sales') }} as s using (sale_id)
where not s.is_return
