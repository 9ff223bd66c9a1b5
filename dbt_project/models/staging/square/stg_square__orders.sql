{{ config(enabled=('square' in var('channels'))) }}
{#- One row per Square order: showroom sales, and the return orders refunds create. -#}
select
    id as order_id,
    location_id,
    state,
    version,
    customer_id,
    ticket_name,
    returns is not null and json_array_length(returns::json) > 0 as is_return,
    returns::json -> 0 ->> 'source_order_id' as source_order_id,
    upper(coalesce(total_money::json ->> 'currency', return_amounts::json -> 'total_money' ->> 'currency')) as currency,
    {{ minor_to_major("(total_money::json ->> 'amount')::bigint", "total_money::json ->> 'currency'") }} as total_amount,
    {{ minor_to_major("(total_tax_money::json ->> 'amount')::bigint", "total_tax_money::json ->> 'currency'") }} as tax_amount,
    {{ minor_to_major("(total_discount_money::json ->> 'amount')::bigint", "total_discount_money::json ->> 'currency'") }} as discount_amount,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at,
    cast(closed_at as timestamptz) as closed_at,
    'square' as channel
from {{ source('square', 'orders') }}
