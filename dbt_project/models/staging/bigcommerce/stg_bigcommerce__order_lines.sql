{{ config(enabled=('bigcommerce' in var('channels'))) }}
{#- One row per order product.  BigCommerce's `total_ex_tax` is unit price × quantity before any
    discount; the coupon shows in `applied_discounts` (summed here); `total_tax` is the tax on the
    discounted amount. -#}
select
    p.id as line_id,
    p.order_id,
    p.product_id,
    p.sku,
    p.name as title,
    p.quantity,
    cast(p.price_ex_tax as decimal(18, 2)) as price_ex_tax,
    cast(p.total_ex_tax as decimal(18, 2)) as total_ex_tax,
    cast(coalesce({{ jsum(json_parse('p.applied_discounts', '[{"amount": "VARCHAR"}]'), 'amount', 'decimal(18, 4)') }}, 0)
         as decimal(18, 2)) as discount,
    cast(p.total_tax as decimal(18, 2)) as total_tax,
    'bigcommerce' as channel
from {{ source('bigcommerce', 'order_products') }} as p
