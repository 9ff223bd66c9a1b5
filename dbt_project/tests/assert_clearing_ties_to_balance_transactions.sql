{{ config(meta={'dagster': {'ref': {'name': 'fct_gl_entries'}}}) }}
-- Each processor's clearing account holds exactly the net of its balance transactions less what
-- it has paid out to the bank (money in transit at any date, R2), so no movement is lost or doubled.
with gl as (
    select g.channel, sum(g.amount_home) as clearing_balance
    from {{ ref('fct_gl_entries') }} as g
    join {{ ref('int_gl_channel_accounts') }} as a on a.channel = g.channel and a.clearing_account = g.account_code
    group by g.channel
),
expected as (
    select channel, sum(amount - fee) as balance from (
        select channel,
               {{ optional_column(ref('int_balance_transactions'), 'amount_home', 'amount', 'amount') }},
               {{ optional_column(ref('int_balance_transactions'), 'fee_home', 'fee', 'fee') }}
        from {{ ref('int_balance_transactions') }} where type <> 'payout'
        union all
        select channel, -{{ optional_column(ref('int_payouts'), 'amount_home', 'amount', 'amount') }}, 0
        from {{ ref('int_payouts') }} where status = 'paid'
    ) as m group by channel
)
select coalesce(gl.channel, e.channel) as channel, gl.clearing_balance, e.balance
from gl full outer join expected as e using (channel)
where coalesce(gl.clearing_balance, 0) <> coalesce(e.balance, 0)
