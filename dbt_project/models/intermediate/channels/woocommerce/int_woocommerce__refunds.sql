{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- WooCommerce refunds in the channel shape: goods (ex tax), shipping and tax refunded, in the
    order currency and in GBP at the order's own rate.  WooCommerce shows restocking only as each
    order line's cumulative `_restock_refunded_items`; those units are attributed to the line's
    refunds newest first (a late return restocks) and reverse COGS at the line's unit cost. -#}
with refund_lines as (
    select
        rl.*,
        ol.restocked_units,
        sum(rl.quantity) over (partition by rl.line_id order by rl.refunded_at desc, rl.refund_id desc
                               rows between unbounded preceding and 1 preceding) as newer_units
    from {{ ref('stg_woocommerce__refund_lines') }} as rl
    join {{ ref('stg_woocommerce__order_lines') }} as ol using (line_id)
),

per_refund as (
    select
        rl.refund_id,
        sum(rl.total) as goods_amount,
        sum(rl.total_tax) as goods_tax,
        cast(sum(rl.quantity) as bigint) as units,
        sum(greatest(0, least(rl.quantity, rl.restocked_units - coalesce(rl.newer_units, 0)))
            * il.unit_cost_home) as cogs_reversal_home,
        sum(greatest(0, least(rl.quantity, rl.restocked_units - coalesce(rl.newer_units, 0)))) as restocked
    from refund_lines as rl
    left join {{ ref('int_order_lines') }} as il
        on il.channel = 'woocommerce' and il.line_id = cast(rl.line_id as varchar)
    group by rl.refund_id
)

select
    'woocommerce' as channel,
    cast(r.refund_id as varchar) as refund_id,
    cast(r.order_id as varchar) as order_id,
    r.refunded_at,
    o.currency,
    coalesce(p.goods_amount, 0) as goods_amount,
    r.shipping_amount,
    coalesce(p.goods_tax, 0) + r.shipping_tax as tax_amount,
    cast(coalesce(p.goods_amount, 0) * o.fx_rate as decimal(18, 2)) as goods_amount_home,
    cast(r.shipping_amount * o.fx_rate as decimal(18, 2)) as shipping_amount_home,
    cast((coalesce(p.goods_tax, 0) + r.shipping_tax) * o.fx_rate as decimal(18, 2)) as tax_amount_home,
    cast(coalesce(p.cogs_reversal_home, 0) as decimal(18, 2)) as cogs_reversal_home,
    coalesce(p.units, 0) as units,
    coalesce(p.restocked, 0) > 0 as restock,
    r.reason as note
from {{ ref('stg_woocommerce__refunds') }} as r
join {{ ref('stg_woocommerce__orders') }} as o using (order_id)
left join per_refund as p using (refund_id)
