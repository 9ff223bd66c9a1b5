{{ config(enabled=('lightspeed' in var('channels'))) }}
{#- Lightspeed returns: each return ticket is a refund of the sale its lines name
    (parent_sale_line_id); goods ex VAT and VAT as positive amounts, returned goods restocked at
    the sold line's unit cost. -#}
with lines as (
    select
        rl.sale_id,
        min(sold.sale_id) as order_id,
        -sum(rl.tax) as tax_amount,
        -sum(case when rl.is_tax_inclusive then rl.total - rl.tax else rl.total end) as goods_amount,
        -sum(ol.unit_cost_home * rl.quantity) as cogs_reversal_home,
        -sum(rl.quantity) as units
    from {{ ref('stg_lightspeed__sale_lines') }} as rl
    left join {{ ref('stg_lightspeed__sale_lines') }} as sold on sold.sale_line_id = rl.parent_sale_line_id
    left join {{ ref('int_order_lines') }} as ol on ol.channel = 'lightspeed' and ol.line_id = rl.parent_sale_line_id
    where rl.quantity < 0
    group by rl.sale_id
),

{#- The return ticket's (negative) tender: cash back from the till, or a card refund through
    Lightspeed Payments, whose balance the Retail API does not show. -#}
tenders as (
    select
        sale_id,
        min(case when payment_type = 'cash' then 'cash' else 'lightspeed_payments' end) as paid_back_by,
        min(sale_payment_id) as payment_id
    from {{ ref('stg_lightspeed__sale_payments') }}
    where amount < 0 and not archived
    group by sale_id
)

select
    'lightspeed' as channel,
    s.sale_id as refund_id,
    l.order_id,
    s.created_at as refunded_at,
    s.currency,
    coalesce(l.goods_amount, 0) as goods_amount,
    cast(0 as decimal(18, 2)) as shipping_amount,
    coalesce(l.tax_amount, 0) as tax_amount,
    coalesce(l.goods_amount, 0) as goods_amount_home,
    cast(0 as decimal(18, 2)) as shipping_amount_home,
    coalesce(l.tax_amount, 0) as tax_amount_home,
    coalesce(l.cogs_reversal_home, 0) as cogs_reversal_home,
    coalesce(l.units, 0) as units,
    true as restock,
    'Returned at the till' as note,
    t.paid_back_by,
    t.payment_id
from {{ ref('stg_lightspeed__sales') }} as s
left join lines as l using (sale_id)
left join tenders as t using (sale_id)
where s.is_return and not coalesce(s.voided, false)
