{#- One row per order from every channel: amounts summed from the canonical lines, shipping
    ex tax, refunds summed from the canonical refunds, and the order's lifecycle.
    An order cancelled before anything was paid (financial status "voided") is void: it carries
    no revenue (scenario P11).  Gift cards sold (int_gift_cards) are not sales: they are in
    `gift_card_amount` and in the total the buyer paid, never in gross or net (scenario S12).
    `tax_amount` is the tax the platform charged on the order (its order-level figure, the tax
    owed); a channel whose order-level tax is rounded once per order rather than per line gives
    the difference as `tax_rounding_amount` (line and shipping tax lines less the order's tax, 0
    where absent), so total_amount = net + shipping + tax + gift cards + tax rounding: what the
    buyer paid, unchanged (scenario S13). -#}
with orders as (
    {{ union_channels_with('orders', [('tax_rounding_amount', 'decimal(18, 2)'),
                                      ('tax_rounding_amount_home', 'decimal(18, 2)')]) }}
),

lines as (
    select
        channel, order_id,
        sum(gross_amount) as gross_amount, sum(discount_amount) as discount_amount,
        sum(net_amount) as line_net_amount, sum(tax_amount) as line_tax_amount,
        sum(gross_amount_home) as gross_amount_home, sum(discount_amount_home) as discount_amount_home,
        sum(net_amount_home) as line_net_amount_home, sum(tax_amount_home) as line_tax_amount_home,
        sum(cogs_home) as cogs_home,
        cast(sum(quantity) as bigint) as units,
        sum(metres) as metres
    from {{ ref('int_order_lines') }}
    group by channel, order_id
),

gift_cards as (
    select channel, order_id, sum(amount) as gift_card_amount, sum(amount_home) as gift_card_amount_home
    from {{ ref('int_gift_cards') }}
    group by channel, order_id
),

refunds as (
    select
        channel, order_id,
        sum(goods_amount) as refunded_amount, sum(tax_amount) as refunded_tax_amount,
        sum(shipping_amount) as refunded_shipping_amount, sum(total_amount) as refund_total_amount,
        sum(goods_amount_home) as refunded_amount_home, sum(tax_amount_home) as refunded_tax_amount_home,
        sum(shipping_amount_home) as refunded_shipping_amount_home,
        sum(cogs_reversal_home) as cogs_reversed_home,
        max(refunded_at) as last_refunded_at
    from {{ ref('int_refunds') }}
    group by channel, order_id
)

select
    o.channel,
    o.order_id,
    o.order_number,
    o.customer_id,
    o.customer_email,
    o.customer_company,
    o.customer_type,
    o.currency,
    o.ordered_at,
    o.updated_at,
    o.cancelled_at,
    o.platform_status,
    o.is_void,
    o.taxes_included,
    o.tax_treatment,
    o.country,
    o.region,
    o.terms_days,
    o.due_on,
    coalesce(l.units, 0) as units,
    l.metres,
    coalesce(l.gross_amount, 0) as gross_amount,
    coalesce(l.discount_amount, 0) as discount_amount,
    o.shipping_amount,
    cast(coalesce(l.line_tax_amount, 0) + o.shipping_tax - coalesce(o.tax_rounding_amount, 0) as decimal(18, 2)) as tax_amount,
    cast(coalesce(o.tax_rounding_amount, 0) as decimal(18, 2)) as tax_rounding_amount,
    cast(coalesce(g.gift_card_amount, 0) as decimal(18, 2)) as gift_card_amount,
    cast(coalesce(l.line_net_amount, 0) + o.shipping_amount + coalesce(l.line_tax_amount, 0) + o.shipping_tax
         + coalesce(g.gift_card_amount, 0) as decimal(18, 2)) as total_amount,
    coalesce(r.refunded_amount, 0) as refunded_amount,
    coalesce(r.refunded_shipping_amount, 0) as refunded_shipping_amount,
    coalesce(r.refunded_tax_amount, 0) as refunded_tax_amount,
    cast(coalesce(l.gross_amount, 0) - coalesce(l.discount_amount, 0) - coalesce(r.refunded_amount, 0) as decimal(18, 2)) as net_amount,
    coalesce(l.gross_amount_home, 0) as gross_amount_home,
    coalesce(l.discount_amount_home, 0) as discount_amount_home,
    o.shipping_amount_home,
    cast(coalesce(l.line_tax_amount_home, 0) + o.shipping_tax_home - coalesce(o.tax_rounding_amount_home, 0)
         as decimal(18, 2)) as tax_amount_home,
    cast(coalesce(o.tax_rounding_amount_home, 0) as decimal(18, 2)) as tax_rounding_amount_home,
    cast(coalesce(g.gift_card_amount_home, 0) as decimal(18, 2)) as gift_card_amount_home,
    cast(coalesce(l.line_net_amount_home, 0) + o.shipping_amount_home + coalesce(l.line_tax_amount_home, 0) + o.shipping_tax_home
         + coalesce(g.gift_card_amount_home, 0) as decimal(18, 2)) as total_amount_home,
    coalesce(r.refunded_amount_home, 0) as refunded_amount_home,
    coalesce(r.refunded_shipping_amount_home, 0) as refunded_shipping_amount_home,
    coalesce(r.refunded_tax_amount_home, 0) as refunded_tax_amount_home,
    cast(coalesce(l.gross_amount_home, 0) - coalesce(l.discount_amount_home, 0) - coalesce(r.refunded_amount_home, 0) as decimal(18, 2)) as net_amount_home,
    coalesce(l.cogs_home, 0) as cogs_home,
    coalesce(r.cogs_reversed_home, 0) as cogs_reversed_home,
    r.last_refunded_at
from orders as o
left join lines as l using (channel, order_id)
left join gift_cards as g using (channel, order_id)
left join refunds as r using (channel, order_id)
