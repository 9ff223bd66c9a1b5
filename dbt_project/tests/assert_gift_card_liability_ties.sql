{{ config(meta={'dagster': {'ref': {'name': 'fct_gl_entries'}}}) }}
-- Scenario S12: the gift card liability (2400) holds, per channel, exactly the gift cards sold less
-- the gift card tenders spent on orders, so no sale or redemption is lost or doubled in the GL.
with gl as (
    select channel, sum(amount_home) as balance
    from {{ ref('fct_gl_entries') }} where account_code = '2400'
    group by channel
),
expected as (
    select channel, -sum(amount_home) as balance from (
        select g.channel, g.amount_home
        from {{ ref('int_gift_cards') }} as g
        join {{ ref('int_orders') }} as o using (channel, order_id)
        where not o.is_void
        union all
        select channel, -amount_home from {{ ref('int_payments') }}
        where processor = 'gift_card' and status = 'succeeded'
    ) as m group by channel
)
select coalesce(gl.channel, e.channel) as channel, gl.balance, e.balance as expected
from gl full outer join expected as e using (channel)
where coalesce(gl.balance, 0) <> coalesce(e.balance, 0)
