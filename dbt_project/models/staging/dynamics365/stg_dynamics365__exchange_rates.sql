{{ config(enabled=('dynamics365' in var('channels'))) }}
{#- GBP per unit of the company's local currency (USD), valid from `starting_date`: BC keeps
    "exchange_rate_amount GBP = relational_exchange_rate_amount USD". -#}
select
    upper(currency_code) as currency_code,
    cast(starting_date as date) as starting_date,
    cast(cast(exchange_rate_amount as decimal(18, 6)) / cast(relational_exchange_rate_amount as decimal(18, 6))
         as decimal(18, 6)) as gbp_per_unit,
    'dynamics365' as channel
from {{ source('dynamics365', 'currency_exchange_rates') }}
where upper(currency_code) = 'GBP' and coalesce(relational_currency_code, '') = ''
