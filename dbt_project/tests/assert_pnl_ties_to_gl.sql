{{ config(meta={'dagster': {'ref': {'name': 'rpt_profit_and_loss'}}}) }}
-- Every P&L line of every channel and month equals the GL's income and expense accounts that roll
-- up to it (seed gl_accounts.pnl_line), posted in that month; net contribution equals the whole
-- GL result of the channel and month.
with gl as (
    select
        g.channel, cast(date_trunc('month', cast(g.posted_on as timestamp)) as date) as month,
        -sum(g.amount_home) filter (where a.pnl_line = 'gross_sales') as gross_sales,
        sum(g.amount_home) filter (where a.pnl_line = 'discounts') as discounts,
        sum(g.amount_home) filter (where a.pnl_line = 'refunds') as refunds,
        -sum(g.amount_home) filter (where a.pnl_line = 'shipping_income') as shipping_income,
        sum(g.amount_home) filter (where a.pnl_line = 'cogs') as cogs,
        sum(g.amount_home) filter (where a.pnl_line = 'fees') as fees,
        -sum(g.amount_home) filter (where a.pnl_line = 'fx_gain_loss') as fx_gain_loss,
        -sum(g.amount_home) as net_contribution
    from {{ ref('fct_gl_entries') }} as g
    join {{ ref('gl_accounts') }} as a using (account_code)
    where a.account_type in ('revenue', 'expense')
    group by 1, 2
)
select p.channel, p.month, gl.channel as gl_channel, gl.month as gl_month
from {{ ref('rpt_profit_and_loss') }} as p
full outer join gl using (channel, month)
where coalesce(p.gross_sales, 0) <> coalesce(gl.gross_sales, 0)
   or coalesce(p.discounts, 0) <> coalesce(gl.discounts, 0)
   or coalesce(p.refunds, 0) <> coalesce(gl.refunds, 0)
   or coalesce(p.shipping_income, 0) <> coalesce(gl.shipping_income, 0)
   or coalesce(p.cogs, 0) <> coalesce(gl.cogs, 0)
   or coalesce(p.fees, 0) <> coalesce(gl.fees, 0)
   or coalesce(p.fx_gain_loss, 0) <> coalesce(gl.fx_gain_loss, 0)
   or coalesce(p.net_contribution, 0) <> coalesce(gl.net_contribution, 0)
