{{ config(enabled=('ecb' in var('sources', ['ecb']))) }}
{#- Unrealised FX on open foreign-currency receivables: one row per open foreign-currency trade
    invoice at each month end before the as-of date, and at the as-of date itself ("today").

      open_amount            what the ledger's receivable still holds in the invoice currency
                             (fct_gl_entries lines on account 1200 for the invoice, posted by that day)
      carrying_amount_home   the same receivable in GBP as booked (invoice rate; payments relieve it at
                             the invoice's own rate, realised FX already taken on each payment)
      revalued_amount_home   open_amount at that day's ECB rate (fct_fx_rates, carried over closed days)
      unrealised_fx_home     revalued - carrying (a gain when positive)

    Nothing is posted: this is the revaluation a bookkeeper would journal (and reverse) at a month end. -#}
{%- set home = var('home_currency') -%}
with invoices as (
    select invoice_number, channel, order_id, customer_id, currency
    from {{ ref('fct_invoices') }}
    where currency <> '{{ home }}' and status <> 'voided'
),

ar as (
    select i.invoice_number, g.posted_on, g.amount, g.amount_home
    from {{ ref('fct_gl_entries') }} as g
    join invoices as i on i.channel = g.document_channel and i.order_id = g.document_id
    where g.account_code = '1200'
),

bounds as (
    select min(posted_on) as first_day, {{ as_of_date() }} as today from ar
),

dates as (
    select cast(cast(m.month_ts as date) + interval '1 month' - interval '1 day' as date) as as_of_date,
           false as is_today
    from bounds, generate_series(cast(date_trunc('month', cast(first_day as timestamp)) as timestamp),
                                 cast(date_trunc('month', cast(today as timestamp)) as timestamp),
                                 interval '1 month') as m(month_ts)
    where cast(cast(m.month_ts as date) + interval '1 month' - interval '1 day' as date) < (select today from bounds)
    union all
    select today, true from bounds
),

positions as (
    select d.as_of_date, d.is_today, a.invoice_number,
           cast(sum(a.amount) as decimal(18, 2)) as open_amount,
           cast(sum(a.amount_home) as decimal(18, 2)) as carrying_amount_home
    from dates as d
    join ar as a on a.posted_on <= d.as_of_date
    group by d.as_of_date, d.is_today, a.invoice_number
    having sum(a.amount) <> 0 or sum(a.amount_home) <> 0
)

select
    p.as_of_date,
    p.is_today,
    'receivable' as exposure,
    p.invoice_number,
    i.channel,
    i.customer_id,
    i.currency,
    p.open_amount,
    p.carrying_amount_home,
    r.gbp_per_unit as ecb_gbp_per_unit,
    r.source_rate_date as ecb_rate_date,
    cast(p.open_amount * r.gbp_per_unit as decimal(18, 2)) as revalued_amount_home,
    cast(cast(p.open_amount * r.gbp_per_unit as decimal(18, 2)) - p.carrying_amount_home as decimal(18, 2))
        as unrealised_fx_home
from positions as p
join invoices as i using (invoice_number)
left join {{ ref('fct_fx_rates') }} as r
    on r.currency = i.currency
    -- the newest day fct_fx_rates holds up to the as-of date: a run that rebuilds this mart without the
    -- rates (a webhook-triggered run of one channel) values "today" at the last rate loaded, and says so
    -- in ecb_rate_date, instead of leaving it without a rate
    and r.rate_date = (select max(r2.rate_date) from {{ ref('fct_fx_rates') }} as r2
                       where r2.currency = i.currency and r2.rate_date <= p.as_of_date)
