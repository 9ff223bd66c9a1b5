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
{#- sums over a nested list of amounts: in the buyer's currency (the converted-from value where eBay
    converted) and in GBP -#}
{%- set buyer_sum = {} -%}
{%- set home_sum = {} -%}
{%- for list, path in [('appliedPromotions', 'discountAmount'), ('ebayCollectAndRemitTaxes', 'amount'), ('taxes', 'amount')] -%}
    {%- do buyer_sum.update({list: 'cast(coalesce(' ~ jsum_of(jlist('l', list), 'coalesce(' ~ jget('x__', path ~ '.convertedFromValue') ~ ', ' ~ jget('x__', path ~ '.value') ~ ')', 'decimal(18, 2)') ~ ', 0) as decimal(18, 2))'}) -%}
    {%- do home_sum.update({list: 'cast(coalesce(' ~ jsum_of(jlist('l', list), jget('x__', path ~ '.value'), 'decimal(18, 2)') ~ ', 0) as decimal(18, 2))'}) -%}
{%- endfor %}

with lines as (
    select order_id, {{ json_rows('line_items', '[' ~ line ~ ']') }} as l, {{ jlist_positions(json_parse('line_items', '[' ~ line ~ ']')) }} as position
    from {{ source('ebay', 'orders') }}
)

select
    order_id,
    cast({{ jget('l', 'lineItemId') }} as varchar) as line_id,
    position,
    cast({{ jget('l', 'sku') }} as varchar) as sku,
    cast({{ jget('l', 'title') }} as varchar) as title,
    cast({{ jget('l', 'quantity') }} as bigint) as quantity,
    cast(coalesce({{ jget('l', 'lineItemCost.convertedFromValue') }}, {{ jget('l', 'lineItemCost.value') }}) as decimal(18, 2)) as line_item_cost,
    cast({{ jget('l', 'lineItemCost.value') }} as decimal(18, 2)) as line_item_cost_home,
    {{ buyer_sum['appliedPromotions'] }} as discount,
    {{ home_sum['appliedPromotions'] }} as discount_home,
    cast(coalesce({{ jget('l', 'deliveryCost.shippingCost.convertedFromValue') }}, {{ jget('l', 'deliveryCost.shippingCost.value') }}, '0') as decimal(18, 2)) as shipping_cost,
    cast(coalesce({{ jget('l', 'deliveryCost.shippingCost.value') }}, '0') as decimal(18, 2)) as shipping_cost_home,
    {{ buyer_sum['ebayCollectAndRemitTaxes'] }} as marketplace_tax,
    {{ home_sum['ebayCollectAndRemitTaxes'] }} as marketplace_tax_home,
    {{ buyer_sum['taxes'] }} as seller_tax,
    {{ home_sum['taxes'] }} as seller_tax_home,
    cast(coalesce({{ jget('l', 'total.convertedFromValue') }}, {{ jget('l', 'total.value') }}) as decimal(18, 2)) as total,
    cast({{ jget('l', 'total.value') }} as decimal(18, 2)) as total_home,
    'ebay' as channel
from lines
