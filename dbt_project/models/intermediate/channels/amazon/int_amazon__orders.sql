{{ config(enabled=('amazon' in var('channels', {}))) }}
{#- Amazon orders in the channel shape.  Fulfilled by Amazon: no shipping charged.  A cancelled
    order (Amazon cancels only before shipment) is void.  marketplace_tax_amount is the part of
    the order's tax that Amazon collects and remits as marketplace facilitator (US sales tax):
    visible here, never owed by the business. -#}
select
    'amazon' as channel,
    o.order_id,
    o.order_id as order_number,
    o.buyer_email as customer_id,
    o.buyer_email as customer_email,
    cast(null as varchar) as customer_company,
    'retail' as customer_type,
    o.currency,
    o.ordered_at,
    o.updated_at,
    o.cancelled_at,
    lower(o.fulfillment_status) as platform_status,
    o.fulfillment_status = 'CANCELLED' as is_void,
    o.taxes_included,
    o.tax_treatment,
    o.country_code as country,
    o.state_or_region as region,
    cast(null as integer) as terms_days,
    cast(null as date) as due_on,
    cast(0 as decimal(18, 2)) as shipping_amount,
    cast(0 as decimal(18, 2)) as shipping_amount_home,
    cast(0 as decimal(18, 2)) as shipping_tax,
    cast(0 as decimal(18, 2)) as shipping_tax_home,
    o.marketplace_tax as marketplace_tax_amount,
    case when o.currency = '{{ var("home_currency") }}' then o.marketplace_tax
         else {{ money_div('o.marketplace_tax * r.rate_num', 'r.rate_den') }} end as marketplace_tax_amount_home,
    o.marketplace_id
from {{ ref('stg_amazon__orders') }} as o
{{ asof_left_join(ref('int_amazon__settlement_rates'), 'r', 'r.currency = o.currency and o.ordered_at >= r.started_at', 'r.started_at desc') }}
