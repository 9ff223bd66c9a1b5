{{ config(enabled=('shopify' in var('channels'))) }}
{#- Gift cards sold on Shopify (scenario S12): one row per gift card line, its value in order and
    shop money.  The value is a liability until the card is spent, not revenue; UK multi-purpose
    vouchers carry no VAT when sold (docs/decisions.md). -#}
select
    'shopify' as channel,
    cast(o.order_id as varchar) as order_id,
    cast(l.line_id as varchar) as line_id,
    o.currency,
    o.ordered_at as sold_at,
    cast(l.price * l.quantity - l.discount as decimal(18, 2)) as amount,
    cast(l.price_shop * l.quantity - l.discount_shop as decimal(18, 2)) as amount_home
from {{ ref('stg_shopify__order_lines') }} as l
join {{ ref('stg_shopify__orders') }} as o using (order_id)
where l.is_gift_card
