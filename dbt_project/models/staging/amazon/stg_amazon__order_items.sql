{{ config(enabled=('amazon' in var('channels', {}))) }}
{#- One row per order item.  item_price = unit price x quantity as listed (VAT-inclusive on the
    European marketplaces), item_tax = all tax the buyer paid on it. -#}
select
    o.order_id,
    i.order_item_id,
    i.seller_sku as sku,
    i.title,
    i.quantity,
    cast(i.unit_price as decimal(18, 2)) as unit_price,
    cast(i.item_price as decimal(18, 2)) as item_price,
    cast(i.item_tax as decimal(18, 2)) as item_tax,
    i.tax_model,
    coalesce(i.tax_model = 'MarketplaceFacilitator', false) as marketplace_facilitator,
    'amazon' as channel
from {{ source('amazon', 'orders') }} as o,
    unnest(from_json(o.order_items, '[{"order_item_id": "VARCHAR", "seller_sku": "VARCHAR", "title": "VARCHAR",
        "quantity": "BIGINT", "unit_price": "VARCHAR", "item_price": "VARCHAR", "item_tax": "VARCHAR",
        "tax_model": "VARCHAR"}]')) as t(i)
