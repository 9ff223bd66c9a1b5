{{ config(enabled=('square' in var('channels'))) }}
{#- Square line items in the channel shape; GBP, so home amounts equal order amounts. -#}
select
    'square' as channel,
    l.order_id,
    l.line_uid as line_id,
    l.sku,
    l.name as title,
    l.variation_name as variant_title,
    l.quantity,
    l.base_price as unit_price,
    o.currency,
    o.created_at as ordered_at,
    l.tax_inclusive as taxes_included,
    'retail' as customer_type,
    l.tax_rate,
    l.base_price * l.quantity as list_amount,
    l.base_price * l.quantity as list_amount_home,
    l.discount,
    l.discount as discount_home,
    l.tax as tax_amount,
    l.tax as tax_amount_home
from {{ ref('stg_square__order_lines') }} as l
join {{ ref('stg_square__orders') }} as o using (order_id)
where not o.is_return
