{{ config(enabled=('ecb' in var('sources', ['ecb']))) }}
{#- Each foreign-currency order and succeeded payment with the rate its platform converted it at
    (home amount / amount, 10 decimals) beside the ECB cross rate of its business date (fct_fx_rates):
    `divergence_pct` = |implied - ECB| / ECB x 100, `is_divergent` beyond var fx_divergence_tolerance_pct.
    The figures elsewhere keep the platforms' conversions; this only says where they stray from the
    reference rate.  Amounts under 10 units are left out (rounding to the penny alone moves their rate). -#}
{%- set home = var('home_currency') -%}
{%- set tolerance = var('fx_divergence_tolerance_pct', 2.0) -%}
with txns as (
    select channel, 'order' as kind, order_id as transaction_id, currency, total_amount as amount,
           total_amount_home as amount_home, {{ business_date('ordered_at') }} as transaction_date
    from {{ ref('fct_orders') }}
    where currency <> '{{ home }}' and not is_void and total_amount >= 10 and total_amount_home > 0
    union all
    select channel, 'payment', payment_id, currency, amount, amount_home, {{ business_date('attempted_at') }}
    from {{ ref('fct_payments') }}
    where currency <> '{{ home }}' and status = 'succeeded' and amount >= 10 and amount_home > 0
),

rated as (
    select t.*, {{ rate_div('t.amount_home', 't.amount', 10) }} as implied_gbp_per_unit,
           r.gbp_per_unit as ecb_gbp_per_unit, r.source_rate_date as ecb_rate_date
    from txns as t
    join {{ ref('fct_fx_rates') }} as r on r.currency = t.currency and r.rate_date = t.transaction_date
)

select
    *,
    {{ rate_div('abs(implied_gbp_per_unit - ecb_gbp_per_unit) * 100', 'ecb_gbp_per_unit', 4) }} as divergence_pct,
    {{ rate_div('abs(implied_gbp_per_unit - ecb_gbp_per_unit) * 100', 'ecb_gbp_per_unit', 4) }} > {{ tolerance }}
        as is_divergent
from rated
