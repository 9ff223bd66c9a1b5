{{ config(enabled=('square' in var('channels'))) }}
{#- One row per returned line item of a Square return order (the order a refund creates). -#}
with rets as (
    select o.id as return_order_id, ret
    from {{ source('square', 'orders') }} as o,
        {{ json_elements('o.returns') }} as t(ret)
    where o.returns is not null
),

lines as (
    select r.return_order_id, r.ret ->> 'source_order_id' as source_order_id, li
    from rets as r,
        {{ json_elements("coalesce(r.ret -> 'return_line_items', '[]')") }} as t(li)
)

select
    l.return_order_id,
    l.li ->> 'uid' as line_uid,
    l.source_order_id,
    l.li ->> 'source_line_item_uid' as source_line_uid,
    l.li ->> 'catalog_object_id' as catalog_object_id,
    v.sku,
    l.li ->> 'name' as name,
    cast(l.li ->> 'quantity' as integer) as quantity,
    upper(l.li -> 'total_money' ->> 'currency') as currency,
    {{ minor_to_major("(l.li -> 'base_price_money' ->> 'amount')::bigint", "l.li -> 'base_price_money' ->> 'currency'") }} as base_price,
    {{ minor_to_major("(l.li -> 'gross_return_money' ->> 'amount')::bigint", "l.li -> 'gross_return_money' ->> 'currency'") }} as gross_return,
    {{ minor_to_major("(l.li -> 'total_discount_money' ->> 'amount')::bigint", "l.li -> 'total_discount_money' ->> 'currency'") }} as discount,
    {{ minor_to_major("(l.li -> 'total_tax_money' ->> 'amount')::bigint", "l.li -> 'total_tax_money' ->> 'currency'") }} as tax,
    {{ minor_to_major("(l.li -> 'total_money' ->> 'amount')::bigint", "l.li -> 'total_money' ->> 'currency'") }} as total,
    'square' as channel
from lines as l
left join {{ ref('stg_square__catalog_variations') }} as v on v.variation_id = l.li ->> 'catalog_object_id'
