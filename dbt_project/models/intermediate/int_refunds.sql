{#- Every refund from every channel, tax-exclusive: goods, shipping and tax refunded, in the
    order's currency and in home currency, plus the cost of goods put back in stock
    (restocked lines reverse their COGS at the original unit cost; scenario C2). -#}
with shopify_lines as (
    select
        rl.refund_id,
        sum(case when o.taxes_included then rl.subtotal - rl.total_tax else rl.subtotal end) as goods_amount,
        sum(rl.total_tax) as goods_tax,
        sum(case when o.taxes_included then rl.subtotal_shop - rl.total_tax_shop else rl.subtotal_shop end) as goods_amount_home,
        sum(rl.total_tax_shop) as goods_tax_home,
        sum(case when rl.restock_type in ('return', 'cancel', 'legacy_restock') then ol.unit_cost_home * rl.quantity else 0 end) as cogs_reversal_home,
        sum(rl.quantity) as units
    from {{ ref('stg_shopify__refund_lines') }} as rl
    join {{ ref('stg_shopify__orders') }} as o using (order_id)
    left join {{ ref('int_order_lines') }} as ol
        on ol.channel = 'shopify' and ol.line_id = cast(rl.line_id as varchar)
    group by all
),

shopify as (
    select
        'shopify' as channel,
        cast(r.refund_id as varchar) as refund_id,
        cast(r.order_id as varchar) as order_id,
        r.refunded_at,
        o.currency,
        coalesce(l.goods_amount, 0) as goods_amount,
        r.shipping_amount,
        coalesce(l.goods_tax, 0) + r.shipping_tax as tax_amount,
        coalesce(l.goods_amount_home, 0) as goods_amount_home,
        r.shipping_amount_shop as shipping_amount_home,
        coalesce(l.goods_tax_home, 0) + r.shipping_tax_shop as tax_amount_home,
        coalesce(l.cogs_reversal_home, 0) as cogs_reversal_home,
        coalesce(l.units, 0) as units,
        r.restock,
        r.note
    from {{ ref('stg_shopify__refunds') }} as r
    join {{ ref('stg_shopify__orders') }} as o using (order_id)
    left join shopify_lines as l using (refund_id)
)

select
    channel,
    refund_id,
    order_id,
    refunded_at,
    currency,
    cast(goods_amount as decimal(18, 2)) as goods_amount,
    cast(shipping_amount as decimal(18, 2)) as shipping_amount,
    cast(tax_amount as decimal(18, 2)) as tax_amount,
    cast(goods_amount + shipping_amount + tax_amount as decimal(18, 2)) as total_amount,
    cast(goods_amount_home as decimal(18, 2)) as goods_amount_home,
    cast(shipping_amount_home as decimal(18, 2)) as shipping_amount_home,
    cast(tax_amount_home as decimal(18, 2)) as tax_amount_home,
    cast(goods_amount_home + shipping_amount_home + tax_amount_home as decimal(18, 2)) as total_amount_home,
    cast(cogs_reversal_home as decimal(18, 2)) as cogs_reversal_home,
    units,
    restock,
    note
from (select * from shopify)
