{{ config(enabled=('square' in var('channels'))) }}
{#- One row per Square payment refund; return_order_id is the order the refund created. -#}
select
    id as refund_id,
    payment_id,
    order_id as return_order_id,
    location_id,
    status,
    reason,
    destination_type,
    upper(amount_money::json ->> 'currency') as currency,
    {{ minor_to_major("(amount_money::json ->> 'amount')::bigint", "amount_money::json ->> 'currency'") }} as amount,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at,
    'square' as channel
from {{ source('square', 'refunds') }}
