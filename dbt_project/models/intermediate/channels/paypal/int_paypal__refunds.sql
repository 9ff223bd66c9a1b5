{{ config(enabled=('paypal' in var('channels'))) }}
{#- PayPal refunds carry no items: the amount is split into goods and tax in the order's own
    proportion (tax_total / total).  A refund of the whole order is a return: every unit goes back
    to stock; a partial refund is a goodwill gesture with nothing returned. -#}
with cogs as (
    select order_id, cast(sum(quantity) as bigint) as units, sum(cogs_home) as cogs_home
    from {{ ref('int_order_lines') }}
    where channel = 'paypal'
    group by order_id
),

refunds as (
    select
        r.*,
        o.total,
        o.tax_total,
        {{ money_div('r.amount * o.tax_total', 'o.total') }} as tax,
        r.amount = o.total as is_return
    from {{ ref('stg_paypal__refunds') }} as r
    join {{ ref('stg_paypal__orders') }} as o using (order_id)
)

select
    'paypal' as channel,
    r.refund_id,
    r.order_id,
    r.refunded_at,
    r.currency,
    cast(r.amount - r.tax as decimal(18, 2)) as goods_amount,
    cast(0 as decimal(18, 2)) as shipping_amount,
    cast(r.tax as decimal(18, 2)) as tax_amount,
    case when r.currency = '{{ var("home_currency") }}' then cast(r.amount - r.tax as decimal(18, 2)) end as goods_amount_home,
    cast(0 as decimal(18, 2)) as shipping_amount_home,
    case when r.currency = '{{ var("home_currency") }}' then cast(r.tax as decimal(18, 2)) end as tax_amount_home,
    cast(case when r.is_return then coalesce(c.cogs_home, 0) else 0 end as decimal(18, 2)) as cogs_reversal_home,
    case when r.is_return then coalesce(c.units, 0) else 0 end as units,
    r.is_return as restock,
    r.note
from refunds as r
left join cogs as c using (order_id)
