{#- The GL accounts of every channel seen in the data (seed gl_channel_accounts); a channel not in
    the seed yet gets the `_default` row (generic sales and clearing accounts), flagged `is_mapped`. -#}
with channels as (
    select channel from {{ ref('int_orders') }}
    union select channel from {{ ref('int_payments') }}
    union select channel from {{ ref('int_balance_transactions') }}
    union select channel from {{ ref('int_payouts') }}
),

d as (select * from {{ ref('gl_channel_accounts') }} where channel = '_default')

select
    c.channel,
    m.channel is not null as is_mapped,
    coalesce(m.kind, d.kind) as kind,
    cast(coalesce(m.sales_account, d.sales_account) as varchar) as sales_account,
    cast(coalesce(m.trade_sales_account, d.trade_sales_account) as varchar) as trade_sales_account,
    cast(coalesce(m.clearing_account, d.clearing_account) as varchar) as clearing_account,
    cast(coalesce(m.fees_account, d.fees_account) as varchar) as fees_account
from channels as c
left join {{ ref('gl_channel_accounts') }} as m using (channel)
cross join d
