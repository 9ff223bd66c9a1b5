{{ config(enabled=('magento' in var('channels'))) }}
{#- Magento order items in the channel shape: VAT-inclusive list amount and discount, the item's
    VAT, and their base-currency (GBP) twins. -#}
select
    'magento' as channel,
    cast(i.order_id as varchar) as order_id,
    cast(i.line_id as varchar) as line_id,
    i.sku,
    i.title,
    cast(null as varchar) as variant_title,
    i.quantity,
    i.price_incl_tax as unit_price,
    i.currency,
    o.ordered_at,
    true as taxes_included,
    'retail' as customer_type,
    i.tax_rate,
    i.row_total_incl_tax as list_amount,
    i.row_total_incl_tax_base as list_amount_home,
    i.discount_amount as discount,
    i.discount_amount_base as discount_home,
    i.tax_amount,
    i.tax_amount_base as tax_amount_home
from {{ ref('stg_magento__order_items') }} as i
join {{ ref('stg_magento__orders') }} as o using (order_id)
