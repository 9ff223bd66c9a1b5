{{ config(enabled=('square' in var('channels'))) }}
{#- One row per line item of a Square sale.  Amounts are Square's (VAT-inclusive when the tax is
    INCLUSIVE): base_price (unit), gross_sales (unit x quantity), discount, tax, total. -#}
with lines as (
    select o.id as order_id, o.taxes, li
    from {{ source('square', 'orders') }} as o,
        {{ json_elements('o.line_items') }} as t(li)
    where o.line_items is not null
),

rates as (
    select
        l.order_id,
        l.li ->> 'uid' as line_uid,
        sum(cast(tx ->> 'percentage' as decimal(18, 6)) / 100) as tax_rate,
        bool_or(tx ->> 'type' = 'INCLUSIVE') as tax_inclusive
    from lines as l,
        {{ json_elements("coalesce(l.li -> 'applied_taxes', '[]')") }} as a(applied),
        {{ json_elements("coalesce(l.taxes, '[]')") }} as x(tx)
    where tx ->> 'uid' = applied ->> 'tax_uid'
    group by l.order_id, l.li ->> 'uid'
)

select
    l.order_id,
    l.li ->> 'uid' as line_uid,
    l.li ->> 'catalog_object_id' as catalog_object_id,
    v.sku,
    l.li ->> 'name' as name,
    l.li ->> 'variation_name' as variation_name,
    cast(l.li ->> 'quantity' as integer) as quantity,
    upper(l.li -> 'total_money' ->> 'currency') as currency,
    {{ minor_to_major("(l.li -> 'base_price_money' ->> 'amount')::bigint", "l.li -> 'base_price_money' ->> 'currency'") }} as base_price,
    {{ minor_to_major("(l.li -> 'gross_sales_money' ->> 'amount')::bigint", "l.li -> 'gross_sales_money' ->> 'currency'") }} as gross_sales,
    {{ minor_to_major("(l.li -> 'total_discount_money' ->> 'amount')::bigint", "l.li -> 'total_discount_money' ->> 'currency'") }} as discount,
    {{ minor_to_major("(l.li -> 'total_tax_money' ->> 'amount')::bigint", "l.li -> 'total_tax_money' ->> 'currency'") }} as tax,
    {{ minor_to_major("(l.li -> 'total_money' ->> 'amount')::bigint", "l.li -> 'total_money' ->> 'currency'") }} as total,
    cast(coalesce(r.tax_rate, 0) as decimal(18, 6)) as tax_rate,
    coalesce(r.tax_inclusive, false) as tax_inclusive,
    'square' as channel
from lines as l
left join rates as r on r.order_id = l.order_id and r.line_uid = l.li ->> 'uid'
left join {{ ref('stg_square__catalog_variations') }} as v on v.variation_id = l.li ->> 'catalog_object_id'
