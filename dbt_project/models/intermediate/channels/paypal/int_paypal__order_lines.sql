{{ config(enabled=('paypal' in var('channels'))) }}
{#- PayPal order items in the channel shape (tax-exclusive; the PayPal account and the storefront
    are GBP, so home amounts are the amounts themselves). -#}
select
    'paypal' as channel,
    i.order_id,
    i.line_id,
    i.sku,
    i.name as title,
    cast(null as varchar) as variant_title,
    i.quantity,
    i.unit_amount as unit_price,
    o.currency,
    o.created_at as ordered_at,
    false as taxes_included,
    'retail' as customer_type,
    cast(null as decimal(9, 6)) as tax_rate,
    cast(i.unit_amount * i.quantity as decimal(18, 2)) as list_amount,
    case when o.currency = '{{ var("home_currency") }}' then cast(i.unit_amount * i.quantity as decimal(18, 2)) end as list_amount_home,
    cast(0 as decimal(18, 2)) as discount,
    cast(0 as decimal(18, 2)) as discount_home,
    cast(i.unit_tax * i.quantity as decimal(18, 2)) as tax_amount,
    case when o.currency = '{{ var("home_currency") }}' then cast(i.unit_tax * i.quantity as decimal(18, 2)) end as tax_amount_home
from {{ ref('stg_paypal__order_items') }} as i
join {{ ref('stg_paypal__orders') }} as o using (order_id)
