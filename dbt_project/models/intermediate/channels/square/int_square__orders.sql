{{ config(enabled=('square' in var('channels'))) }}
{#- Square showroom sales in the channel shape (return orders are refunds, not sales).  Walk-in
    retail at VAT-inclusive prices, no shipping. -#}
select
    'square' as channel,
    o.order_id,
    coalesce(o.ticket_name, o.order_id) as order_number,
    o.customer_id,
    cast(null as varchar) as customer_email,
    cast(null as varchar) as customer_company,
    'retail' as customer_type,
    o.currency,
    o.created_at as ordered_at,
    o.updated_at,
    case when o.state = 'CANCELED' then o.updated_at end as cancelled_at,
    lower(o.state) as platform_status,
    o.state = 'CANCELED' as is_void,
    true as taxes_included,
    'uk_vat' as tax_treatment,
    'GB' as country,
    cast(null as varchar) as region,
    cast(null as integer) as terms_days,
    cast(null as date) as due_on,
    cast(0 as decimal(18, 2)) as shipping_amount,
    cast(0 as decimal(18, 2)) as shipping_amount_home,
    cast(0 as decimal(18, 2)) as shipping_tax,
    cast(0 as decimal(18, 2)) as shipping_tax_home
from {{ ref('stg_square__orders') }} as o
where not o.is_return
