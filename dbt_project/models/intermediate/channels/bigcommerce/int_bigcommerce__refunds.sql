{{ config(enabled=('bigcommerce' in var('channels'))) }}
{#- BigCommerce refunds in the channel shape: goods (ex tax), shipping and tax refunded, in the
    order currency and in GBP at the order's own rate.  Returns are inspected outside BigCommerce
    and never restocked through the refund, so no cost of goods is reversed. -#}
select
    'bigcommerce' as channel,
    cast(r.refund_id as varchar) as refund_id,
    cast(r.order_id as varchar) as order_id,
    r.refunded_at,
    o.currency,
    r.goods_amount,
    r.shipping_amount,
    r.tax_amount,
    {{ money_div('r.goods_amount', 'o.fx_rate') }} as goods_amount_home,
    {{ money_div('r.shipping_amount', 'o.fx_rate') }} as shipping_amount_home,
    {{ money_div('r.tax_amount', 'o.fx_rate') }} as tax_amount_home,
    cast(0 as decimal(18, 2)) as cogs_reversal_home,
    r.units,
    false as restock,
    r.reason as note
from {{ ref('stg_bigcommerce__refunds') }} as r
join {{ ref('stg_bigcommerce__orders') }} as o using (order_id)
