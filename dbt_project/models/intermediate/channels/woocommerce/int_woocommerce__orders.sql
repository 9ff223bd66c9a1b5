{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- WooCommerce orders in the channel shape.  Home amounts are GBP at the store's own rate of the
    order (fx_rate), each amount rounded on its own.  An order never paid (a failed or abandoned
    payment) is void: it carries no revenue. -#}
select
    'woocommerce' as channel,
    cast(order_id as varchar) as order_id,
    order_number,
    customer_id,
    customer_email,
    customer_company,
    'retail' as customer_type,
    currency,
    ordered_at,
    updated_at,
    cast(case when status = 'cancelled' then updated_at end as timestamptz) as cancelled_at,
    status as platform_status,
    paid_at is null as is_void,
    taxes_included,
    tax_treatment,
    ship_country as country,
    ship_state as region,
    cast(null as integer) as terms_days,
    cast(null as date) as due_on,
    shipping_total as shipping_amount,
    cast(shipping_total * fx_rate as decimal(18, 2)) as shipping_amount_home,
    shipping_tax,
    cast(shipping_tax * fx_rate as decimal(18, 2)) as shipping_tax_home
from {{ ref('stg_woocommerce__orders') }}
