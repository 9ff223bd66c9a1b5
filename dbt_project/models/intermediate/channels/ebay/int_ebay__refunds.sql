{{ config(enabled=('ebay' in var('channels'))) }}
{#- eBay refunds in the channel shape.  Each refunded line's amount (what the buyer got back for
    it) is split into goods and tax in the proportions the line was paid: on eBay UK the VAT inside
    the VAT-inclusive amount, on eBay US the share of the line's eBay-collected tax (which eBay
    refunds from what it collected: `marketplace_tax_amount`).  What a refund pays back beyond its
    lines is the delivery charge.  Refunded units (eBay reports amounts, not units) are the
    amount's share of the line's quantity; every eBay refund is a return or a cancellation before
    dispatch, so refunded units go back to stock at the line's unit cost. -#}
{%- set uk_vat = '0.20' -%}
with lines as (
    select
        rl.refund_id,
        rl.order_id,
        rl.amount,
        rl.amount_home,
        case when o.taxes_included
             then {{ money_div('rl.amount * ' ~ uk_vat, '1 + ' ~ uk_vat) }}
             else {{ money_div('rl.amount * l.marketplace_tax', 'l.line_item_cost - l.discount + l.marketplace_tax') }} end as tax,
        case when o.taxes_included
             then {{ money_div('rl.amount_home * ' ~ uk_vat, '1 + ' ~ uk_vat) }}
             else {{ money_div('rl.amount_home * l.marketplace_tax_home', 'l.line_item_cost_home - l.discount_home + l.marketplace_tax_home') }} end as tax_home,
        cast({{ round_double('cast(rl.amount as ' ~ double_type() ~ ') * l.quantity
                   / cast(l.line_item_cost - l.discount + case when o.taxes_included then 0 else l.marketplace_tax end as ' ~ double_type() ~ ')') }} as integer) as units,
        ol.unit_cost_home
    from {{ ref('stg_ebay__refund_lines') }} as rl
    join {{ ref('stg_ebay__order_lines') }} as l using (order_id, line_id)
    join {{ ref('stg_ebay__orders') }} as o using (order_id)
    left join {{ ref('int_order_lines') }} as ol on ol.channel = 'ebay' and ol.line_id = rl.line_id
),

by_refund as (
    select
        refund_id,
        sum(amount) as lines_amount, sum(amount_home) as lines_amount_home,
        sum(amount - tax) as goods, sum(tax) as tax, sum(amount_home - tax_home) as goods_home, sum(tax_home) as tax_home,
        sum(units) as units, sum(units * unit_cost_home) as cogs_reversal_home
    from lines
    group by refund_id
),

refunds as (
    select
        r.*,
        o.currency,
        o.taxes_included,
        r.amount - coalesce(l.lines_amount, 0) as shipping_paid,
        r.amount_home - coalesce(l.lines_amount_home, 0) as shipping_paid_home,
        l.goods, l.tax, l.goods_home, l.tax_home, l.units, l.cogs_reversal_home
    from {{ ref('stg_ebay__refunds') }} as r
    join {{ ref('stg_ebay__orders') }} as o using (order_id)
    left join by_refund as l using (refund_id)
),

split as (
    select
        *,
        case when taxes_included then {{ money_div('shipping_paid * ' ~ uk_vat, '1 + ' ~ uk_vat) }} else 0 end as shipping_tax,
        case when taxes_included then {{ money_div('shipping_paid_home * ' ~ uk_vat, '1 + ' ~ uk_vat) }} else 0 end as shipping_tax_home
    from refunds
)

select
    'ebay' as channel,
    refund_id,
    order_id,
    refunded_at,
    currency,
    cast(coalesce(goods, 0) as decimal(18, 2)) as goods_amount,
    cast(shipping_paid - shipping_tax as decimal(18, 2)) as shipping_amount,
    cast(coalesce(tax, 0) + shipping_tax as decimal(18, 2)) as tax_amount,
    cast(coalesce(goods_home, 0) as decimal(18, 2)) as goods_amount_home,
    cast(shipping_paid_home - shipping_tax_home as decimal(18, 2)) as shipping_amount_home,
    cast(coalesce(tax_home, 0) + shipping_tax_home as decimal(18, 2)) as tax_amount_home,
    cast(case when taxes_included then 0 else coalesce(tax, 0) end as decimal(18, 2)) as marketplace_tax_amount,
    cast(case when taxes_included then 0 else coalesce(tax_home, 0) end as decimal(18, 2)) as marketplace_tax_amount_home,
    cast(coalesce(cogs_reversal_home, 0) as decimal(18, 2)) as cogs_reversal_home,
    coalesce(units, 0) as units,
    true as restock,
    refund_status as note
from split
