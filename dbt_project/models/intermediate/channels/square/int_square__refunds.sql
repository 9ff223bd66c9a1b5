{{ config(enabled=('square' in var('channels'))) }}
{#- Square refunds in the channel shape, from the lines of the return order each refund created:
    goods ex VAT, VAT, and the COGS of the returned units (returns go back on the shop floor). -#}
with lines as (
    select
        rl.return_order_id,
        sum(rl.total - rl.tax) as goods_amount,
        sum(rl.tax) as tax_amount,
        sum(ol.unit_cost_home * rl.quantity) as cogs_reversal_home,
        sum(rl.quantity) as units
    from {{ ref('stg_square__return_lines') }} as rl
    left join {{ ref('int_order_lines') }} as ol
        on ol.channel = 'square' and ol.line_id = rl.source_line_uid
    group by rl.return_order_id
)

select
    'square' as channel,
    r.refund_id,
    p.order_id,
    r.created_at as refunded_at,
    r.currency,
    coalesce(l.goods_amount, 0) as goods_amount,
    cast(0 as decimal(18, 2)) as shipping_amount,
    coalesce(l.tax_amount, 0) as tax_amount,
    coalesce(l.goods_amount, 0) as goods_amount_home,
    cast(0 as decimal(18, 2)) as shipping_amount_home,
    coalesce(l.tax_amount, 0) as tax_amount_home,
    coalesce(l.cogs_reversal_home, 0) as cogs_reversal_home,
    coalesce(l.units, 0) as units,
    true as restock,
    r.reason as note,
    -- cash goes back from the till; card refunds are Square balance movements (balance transactions)
    case when p.source_type = 'CASH' then 'cash' end as paid_back_by,
    r.payment_id
from {{ ref('stg_square__refunds') }} as r
join {{ ref('stg_square__payments') }} as p using (payment_id)
left join lines as l using (return_order_id)
where r.status in ('COMPLETED', 'PENDING')
