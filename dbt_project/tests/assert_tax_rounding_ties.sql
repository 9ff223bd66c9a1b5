{{ config(meta={'dagster': {'ref': {'name': 'fct_gl_entries'}}}) }}
-- Scenario S13: every order whose line and shipping tax lines add up to more or less than the
-- platform's order-level tax has exactly that difference in 7900 Rounding differences on its own
-- order entry (credit when the lines say more), and no order entry posts rounding otherwise, so
-- a sub-cent difference is never lost nor moved into tax or sales.
with gl as (
    select channel, source_id as order_id, sum(amount_home) as rounding
    from {{ ref('fct_gl_entries') }}
    where source_type = 'order' and account_code = '7900'
    group by 1, 2
),
expected as (
    select channel, order_id, -tax_rounding_amount_home as rounding
    from {{ ref('fct_orders') }}
    where not is_void and tax_rounding_amount_home <> 0
)
select coalesce(gl.channel, e.channel) as channel, coalesce(gl.order_id, e.order_id) as order_id,
       gl.rounding, e.rounding as expected
from gl full outer join expected as e using (channel, order_id)
where coalesce(gl.rounding, 0) <> coalesce(e.rounding, 0)
