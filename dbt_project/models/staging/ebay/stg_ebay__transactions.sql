{{ config(enabled=('ebay' in var('channels'))) }}
{#- The seller's Finances ledger, one row per (transaction_id, transaction_type), in the seller's
    funds currency (GBP).  `net` is the signed movement of the seller's balance (`amount`, negative
    for DEBIT bookings), `fee` the fees charged in it, `gross` = net + fee; `original_*` hold the
    buyer-currency amounts eBay converted from. -#}
{%- set amt = '{"value": "VARCHAR", "currency": "VARCHAR", "convertedFromValue": "VARCHAR", "convertedFromCurrency": "VARCHAR", "exchangeRate": "VARCHAR"}' -%}

with parsed as (
    select *, {{ json_parse('amount', amt) }} as a, {{ json_parse('total_fee_amount', amt) }} as f
    from {{ source('ebay', 'transactions') }}
),

signed as (
    select
        *,
        case booking_entry when 'DEBIT' then -1 else 1 end as sign,
        cast({{ jget('a', 'value') }} as decimal(18, 2)) as amount_value,
        cast(coalesce({{ jget('f', 'value') }}, '0') as decimal(18, 2)) as fee_value
    from parsed
)

select
    transaction_id,
    transaction_type,
    transaction_status,
    transaction_date as occurred_at,
    booking_entry,
    order_id,
    payout_id,
    fee_type,
    transaction_memo,
    upper({{ jget('a', 'currency') }}) as currency,
    cast(sign * amount_value + fee_value as decimal(18, 2)) as gross,
    fee_value as fee,
    cast(sign * amount_value as decimal(18, 2)) as net,
    upper({{ jget('a', 'convertedFromCurrency') }}) as original_currency,
    cast(sign * cast({{ jget('a', 'convertedFromValue') }} as decimal(18, 2)) as decimal(18, 2)) as original_net,
    cast({{ jget('a', 'exchangeRate') }} as decimal(18, 6)) as exchange_rate,
    'ebay' as channel
from signed
