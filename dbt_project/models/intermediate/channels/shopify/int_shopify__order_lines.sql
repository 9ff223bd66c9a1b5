{{ config(enabled=('shopify' in var('channels'))) }}
{#- Shopify order lines in the channel shape (list amounts in order and shop money).  A gift card
    line is not a sale (scenario S12): it is in int_shopify__gift_cards instead. -#}
select
    'shopify' as channel,
    cast(o.order_id as varchar) as order_id,
    cast(l.line_id as varchar) as line_id,
    l.sku,
    l.title,
    l.variant_title,
    l.quantity,
    l.price as unit_price,
    o.currency,
    o.ordered_at,
    o.taxes_included,
    o.customer_type,
    coalesce(l.tax_rate, 0) as tax_rate,
    l.price * l.quantity as list_amount,
    l.price_shop * l.quantity as list_amount_home,
    l.discount,
    l.discount_shop as discount_home,
    coalesce(l.tax, 0) as tax_amount,
    coalesce(l.tax_shop, 0) as tax_amount_home
from {{ ref('stg_shopify__order_lines') }} as l
join {{ ref('stg_shopify__orders') }} as o using (order_id)
where not l.is_gift_card
