{{ config(meta={'dagster': {'ref': {'name': 'fct_orders'}}}) }}
-- An order's gross - discount equals the net of its lines, and its total equals
-- lines net + shipping + tax + gift cards sold + tax rounding (S13; before refunds).
select o.channel, o.order_id
from {{ ref('fct_orders') }} as o
left join (
    select channel, order_id, sum(net_amount) as net, sum(net_amount_home) as net_home
    from {{ ref('fct_order_lines') }} group by channel, order_id
) as l using (channel, order_id)
where o.gross_amount - o.discount_amount <> coalesce(l.net, 0)
   or o.gross_amount_home - o.discount_amount_home <> coalesce(l.net_home, 0)
   or o.total_amount <> coalesce(l.net, 0) + o.shipping_amount + o.tax_amount + o.gift_card_amount + o.tax_rounding_amount
