{{ config(enabled=('shopify' in var('channels'))) }}
{#- Shopify refunds in the channel shape: goods (ex tax), shipping and tax refunded, in order and
    shop money, and the COGS of restocked lines reversed at the line's unit cost. -#}
with shopify_lines as (
    select
        rl.refund_id,
        sum(case when o.taxes_included then rl.subtotal - rl.total_tax else rl.subtotal end) as goods_amount,
        sum(rl.total_tax) as goods_tax,
        sum(case when o.taxes_included then rl.subtotal_shop - rl.total_tax_shop else rl.subtotal_shop end) as goods_amount_home,
        sum(rl.total_tax_shop) as goods_tax_home,
        sum(case when rl.restock_type in ('return', 'cancel', 'legacy_restock') then ol.unit_cost_home * rl.quantity else 0 end) as cogs_reversal_home,
        cast(sum(rl.quantity) as bigint) as units
    from {{ ref('stg_shopify__refund_lines') }} as rl
    join {{ ref('stg_shopify__orders') }} as o using (order_id)
    left join {{ ref('int_order_lines') }} as ol
        on ol.channel = 'shopify' and ol.line_id = cast(rl.line_id as varchar)
    group by rl.refund_id
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

select * from shopify
