{{ config(enabled=('square' in var('channels'))) }}
{#- One row per Square payment attempt (card or cash).  processing_fee is the sum of Square's fee
    entries (positive = charged); 0 until Square has computed it, and for cash. -#}
with fees as (
    select
        p.id,
        sum((f -> 'amount_money' ->> 'amount')::bigint) as fee_minor,
        max(cast(f ->> 'effective_at' as timestamptz)) as fee_effective_at
    from {{ source('square', 'payments') }} as p,
        {{ json_elements('p.processing_fee') }} as t(f)
    where p.processing_fee is not null
    group by p.id
)

select
    p.id as payment_id,
    p.order_id,
    p.location_id,
    p.customer_id,
    p.status,
    p.source_type,
    p.card_details::json ->> 'status' as card_status,
    p.card_details::json -> 'card' ->> 'card_brand' as card_brand,
    p.card_details::json -> 'errors' -> 0 ->> 'code' as failure_code,
    upper(p.amount_money::json ->> 'currency') as currency,
    {{ minor_to_major("(p.amount_money::json ->> 'amount')::bigint", "p.amount_money::json ->> 'currency'") }} as amount,
    {{ minor_to_major("(p.total_money::json ->> 'amount')::bigint", "p.amount_money::json ->> 'currency'") }} as total_amount,
    {{ minor_to_major("coalesce((p.refunded_money::json ->> 'amount')::bigint, 0)", "p.amount_money::json ->> 'currency'") }} as refunded_amount,
    {{ minor_to_major("coalesce(f.fee_minor, 0)", "p.amount_money::json ->> 'currency'") }} as processing_fee,
    f.fee_minor is not null as fee_known,
    f.fee_effective_at,
    cast(p.created_at as timestamptz) as created_at,
    cast(p.updated_at as timestamptz) as updated_at,
    'square' as channel
from {{ source('square', 'payments') }} as p
left join fees as f using (id)
