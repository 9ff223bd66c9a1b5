{{ config(enabled=('ebay' in var('channels'))) }}
{#- One row per order line item.  Amounts in the buyer's currency and (`_home`) the seller's GBP:
    `line_item_cost` = unit price x quantity as listed, `discount` = promotions applied to the
    line, `shipping_cost` the line's delivery charge, `marketplace_tax` the tax eBay collects and
    remits (`ebayCollectAndRemitTaxes`), `seller_tax` tax the seller collected (`taxes`). -#}
{%- set amt = '{"value": "VARCHAR", "convertedFromValue": "VARCHAR"}' -%}
{%- set line = '{"lineItemId": "VARCHAR", "sku": "VARCHAR", "title": "VARCHAR", "quantity": "BIGINT", "lineItemCost": ' ~ amt
    ~ ', "deliveryCost": {"shippingCost": ' ~ amt ~ '}, "appliedPromotions": [{"discountAmount": ' ~ amt
    ~ '}], "taxes": [{"amount": ' ~ amt ~ '}], "ebayCollectAndRemitTaxes": [{"taxType": "VARCHAR", "amount": ' ~ amt
    ~ '}], "total": ' ~ amt ~ '}' -%}

with lines as (
    select order_id, unnest(from_json(line_items, '[{{ line }}]')) as l, generate_subscripts(from_json(line_items, '[{{ line }}]'), 1) as position
    from {{ source('ebay', 'orders') }}
)

select
    order_id,
    l.lineItemId as line_id,
    position,
    l.sku,
    l.title,
    l.quantity,
    cast(coalesce(l.lineItemCost.convertedFromValue, l.lineItemCost.value) as decimal(18, 2)) as line_item_cost,
    cast(l.lineItemCost.value as decimal(18, 2)) as line_item_cost_home,
    cast(coalesce(list_sum(list_transform(l.appliedPromotions, lambda x: cast(coalesce(x.discountAmount.convertedFromValue, x.discountAmount.value) as decimal(18, 2)))), 0) as decimal(18, 2)) as discount,
    cast(coalesce(list_sum(list_transform(l.appliedPromotions, lambda x: cast(x.discountAmount.value as decimal(18, 2)))), 0) as decimal(18, 2)) as discount_home,
    cast(coalesce(l.deliveryCost.shippingCost.convertedFromValue, l.deliveryCost.shippingCost.value, '0') as decimal(18, 2)) as shipping_cost,
    cast(coalesce(l.deliveryCost.shippingCost.value, '0') as decimal(18, 2)) as shipping_cost_home,
    cast(coalesce(list_sum(list_transform(l.ebayCollectAndRemitTaxes, lambda x: cast(coalesce(x.amount.convertedFromValue, x.amount.value) as decimal(18, 2)))), 0) as decimal(18, 2)) as marketplace_tax,
    cast(coalesce(list_sum(list_transform(l.ebayCollectAndRemitTaxes, lambda x: cast(x.amount.value as decimal(18, 2)))), 0) as decimal(18, 2)) as marketplace_tax_home,
    cast(coalesce(list_sum(list_transform(l.taxes, lambda x: cast(coalesce(x.amount.convertedFromValue, x.amount.value) as decimal(18, 2)))), 0) as decimal(18, 2)) as seller_tax,
    cast(coalesce(list_sum(list_transform(l.taxes, lambda x: cast(x.amount.value as decimal(18, 2)))), 0) as decimal(18, 2)) as seller_tax_home,
    cast(coalesce(l.total.convertedFromValue, l.total.value) as decimal(18, 2)) as total,
    cast(l.total.value as decimal(18, 2)) as total_home,
    'ebay' as channel
from lines
