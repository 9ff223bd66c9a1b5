{{ config(meta={'dagster': {'ref': {'name': 'rpt_tax_obligations'}}}) }}
-- Net tax owed per jurisdiction and quarter equals the movement of the GL's tax payable lines.
with gl as (
    select jurisdiction, {{ year_quarter('posted_on') }} as period,
           -sum(amount_home) as net_owed_home
    from {{ ref('fct_gl_entries') }}
    where jurisdiction is not null
    group by 1, 2
)
select coalesce(t.jurisdiction, gl.jurisdiction) as jurisdiction, coalesce(t.period, gl.period) as period,
       t.net_owed_home, gl.net_owed_home as gl_net_owed_home
from {{ ref('rpt_tax_obligations') }} as t
full outer join gl using (jurisdiction, period)
where coalesce(t.net_owed_home, 0) <> coalesce(gl.net_owed_home, 0)
