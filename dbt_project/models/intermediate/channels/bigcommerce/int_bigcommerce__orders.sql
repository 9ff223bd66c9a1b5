{{ config(enabled=('bigcommerce' in var('channels'))) }}
{#- BigCommerce orders in the channel shape.  Home amounts are GBP at the store's own rate of the
    order (order currency per GBP: amount / fx_rate), each amount rounded on its own.  An order
    whose payment was never captured (declined, awaiting payment) is void: it carries no revenue. -#}
select
    'bigcommerce' as channel,
    cast(order_id as varchar) as order_id,
    order_number,
    customer_id,
    customer_email,
    customer_company,
    'retail' as customer_type,
    currency,
    ordered_at,
    updated_at,
    cast(case when status_id = 5 then updated_at end as timestamptz) as cancelled_at,
    status as platform_status,
    not is_paid as is_void,
    false as taxes_included,
    tax_treatment,
    ship_country as country,
    ship_state as region,
    cast(null as integer) as terms_days,
    cast(null as date) as due_on,
    shipping_amount,
    {{ money_div('shipping_amount', 'fx_rate') }} as shipping_amount_home,
    shipping_tax,
    {{ money_div('shipping_tax', 'fx_rate') }} as shipping_tax_home
from {{ ref('stg_bigcommerce__orders') }}
