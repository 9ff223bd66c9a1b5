{{ config(enabled=('ecb' in var('sources', ['ecb']))) }}
{#- The day's FX rate in home currency: one row per calendar day x currency from the first ECB rate
    to the as-of date.  GBP per unit is the cross rate through the euro, computed exactly (10 decimals,
    half-up) from the two ECB rates of the same day:
        gbp_per_unit(EUR) = GBP per EUR
        gbp_per_unit(X)   = (GBP per EUR) / (X per EUR)
    A weekend or TARGET holiday (no ECB publication) carries the last published day's rate forward;
    `source_rate_date` says which day that was. -#}
{%- set home = var('home_currency') -%}
with obs as (
    select * from {{ ref('stg_ecb__rates') }}
),

home_per_eur as (
    select rate_date, units_per_eur as home_per_eur from obs where currency = '{{ home }}'
),

published as (
    select rate_date, 'EUR' as currency, cast(1 as decimal(18, 6)) as units_per_eur, home_per_eur,
           cast(home_per_eur as decimal(18, 10)) as gbp_per_unit
    from home_per_eur
    union all
    select o.rate_date, o.currency, o.units_per_eur, h.home_per_eur,
           {{ rate_div('h.home_per_eur', 'o.units_per_eur', 10) }} as gbp_per_unit
    from obs as o
    join home_per_eur as h using (rate_date)
    where o.currency <> '{{ home }}'
),

bounds as (
    select min(rate_date) as first_day, {{ as_of_date() }} as last_day from published
),

days as (
    select cast(s.day_ts as date) as rate_date
    from bounds, generate_series(cast(first_day as timestamp), cast(last_day as timestamp), interval '1 day') as s(day_ts)
),

currencies as (
    select distinct currency from published
),

filled as (
    select d.rate_date, c.currency,
           (select max(p.rate_date) from published as p
            where p.currency = c.currency and p.rate_date <= d.rate_date) as source_rate_date
    from days as d
    cross join currencies as c
)

select
    f.rate_date,
    f.currency,
    p.gbp_per_unit,
    f.source_rate_date,
    f.rate_date = f.source_rate_date as is_published_day,
    p.units_per_eur,
    p.home_per_eur as gbp_per_eur
from filled as f
join published as p on p.currency = f.currency and p.rate_date = f.source_rate_date
