{#- Sales trends by day, ISO week (Monday) and month (business time zone) x channel x product
    category: orders, units, metres of fabric, sales, average order value, the change against the
    previous period and against the same period a year earlier (364 days / 52 weeks / 12 months
    back, so days and weeks compare the same weekday), and for days the 7- and 28-day moving
    averages of net sales.  Periods with no sales are present with zeros (a continuous series
    from the first sale to the report date), so the comparisons and averages are honest.
    Sales are at the order date, ex tax, after discounts and before refunds; void orders excluded. -#}
{%- set grains = {'day': ('day', '1 day', '364 days'), 'week': ('week', '1 week', '52 weeks'), 'month': ('month', '1 month', '12 months')} -%}
with lines as (
    select l.channel, l.category, l.order_id, {{ business_date('l.ordered_at') }} as sold_on,
           l.quantity, l.metres, l.gross_amount_home, l.discount_amount_home, l.net_amount_home
    from {{ ref('int_order_lines') }} as l
    join {{ ref('int_orders') }} as o using (channel, order_id)
    where not o.is_void
),

combos as (
    select distinct channel, category from lines
),

bounds as (
    select min(sold_on) as first_day, greatest(max(sold_on), {{ as_of_date() }}) as last_day from lines
),

{% for grain, (unit, step, back) in grains.items() %}
spine_{{ grain }} as (
    select cast(p.period_ts as date) as period_start
    from bounds, generate_series(cast(date_trunc('{{ unit }}', cast(first_day as timestamp)) as timestamp),
                                 cast(date_trunc('{{ unit }}', cast(last_day as timestamp)) as timestamp),
                                 interval '{{ step }}') as p(period_ts)
),

agg_{{ grain }} as (
    select channel, category, cast(date_trunc('{{ unit }}', cast(sold_on as timestamp)) as date) as period_start,
           count(distinct order_id) as orders, sum(quantity) as units, sum(metres) as metres,
           sum(gross_amount_home) as gross_sales_home, sum(discount_amount_home) as discounts_home,
           sum(net_amount_home) as net_sales_home
    from lines
    group by 1, 2, 3
),

filled_{{ grain }} as (
    select
        '{{ grain }}' as grain, s.period_start, c.channel, c.category,
        coalesce(a.orders, 0) as orders, coalesce(a.units, 0) as units, coalesce(a.metres, 0) as metres,
        coalesce(a.gross_sales_home, 0) as gross_sales_home, coalesce(a.discounts_home, 0) as discounts_home,
        coalesce(a.net_sales_home, 0) as net_sales_home
    from spine_{{ grain }} as s
    cross join combos as c
    left join agg_{{ grain }} as a on a.period_start = s.period_start and a.channel = c.channel and a.category = c.category
),

compared_{{ grain }} as (
    select
        f.*,
        lag(f.net_sales_home) over w as previous_net_sales_home,
        ly.net_sales_home as last_year_net_sales_home,
        {%- if grain == 'day' %}
        sum(f.net_sales_home) over (w rows between 6 preceding and current row) as sum_7,
        count(*) over (w rows between 6 preceding and current row) as n_7,
        sum(f.net_sales_home) over (w rows between 27 preceding and current row) as sum_28,
        count(*) over (w rows between 27 preceding and current row) as n_28
        {%- else %}
        cast(null as decimal(18, 2)) as sum_7, cast(null as integer) as n_7,
        cast(null as decimal(18, 2)) as sum_28, cast(null as integer) as n_28
        {%- endif %}
    from filled_{{ grain }} as f
    left join filled_{{ grain }} as ly
        on ly.channel = f.channel and ly.category = f.category
        and ly.period_start = cast(f.period_start - interval '{{ back }}' as date)
    window w as (partition by f.channel, f.category order by f.period_start)
){{ ',' if not loop.last }}
{% endfor %}

select
    grain,
    period_start,
    channel,
    category,
    cast(orders as integer) as orders,
    cast(units as bigint) as units,
    cast(metres as decimal(18, 2)) as metres,
    cast(gross_sales_home as decimal(18, 2)) as gross_sales_home,
    cast(discounts_home as decimal(18, 2)) as discounts_home,
    cast(net_sales_home as decimal(18, 2)) as net_sales_home,
    case when orders > 0 then {{ money_div('net_sales_home', 'orders') }} end as average_order_value_home,
    cast(previous_net_sales_home as decimal(18, 2)) as previous_net_sales_home,
    cast(net_sales_home - previous_net_sales_home as decimal(18, 2)) as change_vs_previous_home,
    case when previous_net_sales_home <> 0
         then {{ money_div('(net_sales_home - previous_net_sales_home) * 100', 'previous_net_sales_home') }} end as change_vs_previous_pct,
    cast(last_year_net_sales_home as decimal(18, 2)) as last_year_net_sales_home,
    cast(net_sales_home - last_year_net_sales_home as decimal(18, 2)) as change_vs_last_year_home,
    case when last_year_net_sales_home <> 0
         then {{ money_div('(net_sales_home - last_year_net_sales_home) * 100', 'last_year_net_sales_home') }} end as change_vs_last_year_pct,
    case when n_7 = 7 then {{ money_div('sum_7', '7') }} end as moving_avg_7d_home,
    case when n_28 = 28 then {{ money_div('sum_28', '28') }} end as moving_avg_28d_home
from (
    {% for grain in grains %}
    select * from compared_{{ grain }}{{ ' union all' if not loop.last }}
    {% endfor %}
) as t
