{{ config(enabled=('square' in var('channels'))) }}
{#- One row per Square payout to the bank. -#}
select
    id as payout_id,
    location_id,
    status,
    upper(coalesce(amount_money::json ->> 'currency', amount_money::json ->> 'currency_code')) as currency,
    {{ minor_to_major("(amount_money::json ->> 'amount')::bigint", "coalesce(amount_money::json ->> 'currency', amount_money::json ->> 'currency_code')") }} as amount,
    cast(arrival_date as date) as arrival_date,
    type as payout_type,
    end_to_end_id,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at,
    'square' as channel
from {{ source('square', 'payouts') }}
