{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- WooCommerce orders in the channel shape.  Home amounts are GBP at the store's own rate of the
    order (fx_rate), each amount rounded on its own.  An order never paid (a failed or abandoned
    payment) is void: it carries no revenue.
    tax_rounding_amount[_home] = the lines' own rounded tax less the order's cart tax, which the
    store rounds once when it rounds tax at subtotal level (scenario S13); the cart tax is owed.
    In GBP it is the lines' converted tax less the converted cart tax, only where the two differ
    in the order's currency (elsewhere each converted line stays the tax, as before). -#}
with line_tax as (
    select l.order_id, sum(l.total_tax) as amount, sum(cast(l.total_tax * o.fx_rate as decimal(18, 2))) as amount_home
    from {{ ref('stg_woocommerce__order_lines') }} as l
    join {{ ref('stg_woocommerce__orders') }} as o using (order_id)
    group by l.order_id
)

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
    cast(shipping_tax * fx_rate as decimal(18, 2)) as shipping_tax_home,
    cast(coalesce(t.amount, 0) - cart_tax as decimal(18, 2)) as tax_rounding_amount,
    cast(case when coalesce(t.amount, 0) = cart_tax then 0
              else coalesce(t.amount_home, 0) - cast(cart_tax * fx_rate as decimal(18, 2)) end
         as decimal(18, 2)) as tax_rounding_amount_home
from {{ ref('stg_woocommerce__orders') }}
left join line_tax as t using (order_id)
