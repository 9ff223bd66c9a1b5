{#- Tax owed per jurisdiction (UK VAT, EU country under OSS, US state, AU GST) and quarter, in home
    currency: sales (ex tax) and tax on orders placed in the quarter, less refunds made in it
    (tax point = order date, refund date; business time zone).  Zero-rated, reverse-charge and
    exempt sales are listed separately (they carry no tax but belong on the return).  Tax a
    marketplace collected and remits itself (marketplace_tax_amount_home on int_order_lines and
    int_refunds, 0 where a channel does not give it) is shown, net of refunds, but never owed:
    tax collected and refunded here are ours only.
    net_owed_home = tax_collected_home - tax_refunded_home. -#}
with orders as (
    select
        o.channel, o.order_id, o.ordered_at,
        o.gross_amount_home - o.discount_amount_home + o.shipping_amount_home as sales_home,
        o.tax_amount_home - d.marketplace_tax_amount_home as tax_amount_home,
        d.marketplace_tax_amount_home,
        t.jurisdiction, t.regime, t.is_taxable
    from {{ ref('int_orders') }} as o
    join {{ ref('int_gl_documents') }} as d using (channel, order_id)
    join {{ ref('int_order_tax_jurisdictions') }} as t using (channel, order_id)
    where not o.is_void
),

movements as (
    select jurisdiction, regime, is_taxable, {{ business_date('ordered_at') }} as tax_point,
           1 as orders, 0 as refunds, sales_home, cast(0 as decimal(18, 2)) as refunded_sales_home,
           tax_amount_home as tax_collected_home, cast(0 as decimal(18, 2)) as tax_refunded_home,
           marketplace_tax_amount_home
    from orders
    union all
    select o.jurisdiction, o.regime, o.is_taxable, {{ business_date('r.refunded_at') }},
           0, 1, cast(0 as decimal(18, 2)), r.goods_amount_home + r.shipping_amount_home,
           cast(0 as decimal(18, 2)), r.tax_amount_home - m.marketplace_tax_amount_home, -m.marketplace_tax_amount_home
    from {{ ref('int_refunds') }} as r
    join {{ ref('int_gl_refund_tax') }} as m using (channel, refund_id)
    join orders as o using (channel, order_id)
)

select
    jurisdiction,
    regime,
    cast(date_trunc('quarter', cast(tax_point as timestamp)) as date) as period_start,
    cast(date_trunc('quarter', cast(tax_point as timestamp)) + interval '3 month' - interval '1 day' as date) as period_end,
    {{ year_quarter('tax_point') }} as period,
    cast(sum(orders) as integer) as orders,
    cast(sum(refunds) as integer) as refunds,
    cast(coalesce(sum(sales_home - refunded_sales_home) filter (where is_taxable), 0) as decimal(18, 2)) as taxable_sales_home,
    cast(coalesce(sum(sales_home - refunded_sales_home) filter (where not is_taxable), 0) as decimal(18, 2)) as zero_rated_sales_home,
    cast(sum(tax_collected_home) as decimal(18, 2)) as tax_collected_home,
    cast(sum(tax_refunded_home) as decimal(18, 2)) as tax_refunded_home,
    cast(sum(marketplace_tax_amount_home) as decimal(18, 2)) as marketplace_collected_tax_home,
    cast(sum(tax_collected_home) - sum(tax_refunded_home) as decimal(18, 2)) as net_owed_home
from movements
group by 1, 2, 3, 4, 5
