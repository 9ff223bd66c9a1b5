{{ config(enabled=('square' in var('channels'))) }}
{#- One row per catalog item variation (what a line item's catalog_object_id names). -#}
select
    id as variation_id,
    item_id,
    sku,
    name as variation_name,
    {{ minor_to_major("(price_money::json ->> 'amount')::bigint", "price_money::json ->> 'currency'") }} as price,
    is_deleted,
    cast(updated_at as timestamptz) as updated_at,
    'square' as channel
from {{ source('square', 'catalog_variations') }}
