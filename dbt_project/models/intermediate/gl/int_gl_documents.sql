{#- What each order puts on accounts receivable: its total less the tax a marketplace collects and
    remits itself (that tax never passes through our books).  Channels give the marketplace's share
    as `marketplace_tax_amount` / `marketplace_tax_amount_home` on int_order_lines (0 where absent);
    `tax_amount` there stays all the tax the buyer paid. -#}
with lines as (
    select
        channel, order_id,
        sum({{ optional_column(ref('int_order_lines'), 'marketplace_tax_amount', bare=true) }}) as marketplace_tax_amount,
        sum({{ optional_column(ref('int_order_lines'), 'marketplace_tax_amount_home', bare=true) }}) as marketplace_tax_amount_home
    from {{ ref('int_order_lines') }}
    group by channel, order_id
)

select
    o.channel,
    o.order_id,
    o.currency,
    o.is_void,
    cast(coalesce(l.marketplace_tax_amount, 0) as decimal(18, 2)) as marketplace_tax_amount,
    cast(coalesce(l.marketplace_tax_amount_home, 0) as decimal(18, 2)) as marketplace_tax_amount_home,
    cast(o.total_amount - coalesce(l.marketplace_tax_amount, 0) as decimal(18, 2)) as receivable_amount,
    cast(o.total_amount_home - coalesce(l.marketplace_tax_amount_home, 0) as decimal(18, 2)) as receivable_amount_home
from {{ ref('int_orders') }} as o
left join lines as l using (channel, order_id)
