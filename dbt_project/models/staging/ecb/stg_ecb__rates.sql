{{ config(enabled=('ecb' in var('sources', ['ecb']))) }}
{#- One row per ECB reference rate: units of `currency` per 1 EUR on a TARGET business day. -#}
select
    upper(currency) as currency,
    cast(rate_date as date) as rate_date,
    cast(obs_value as decimal(18, 6)) as units_per_eur,
    decimals,
    obs_status,
    series_key,
    'ecb' as channel
from {{ source('ecb', 'rates') }}
where upper(currency_denom) = 'EUR'
