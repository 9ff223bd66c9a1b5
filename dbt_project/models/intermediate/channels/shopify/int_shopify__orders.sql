{{ config(enabled=('shopify' in var('channels'))) }}
{#- Shopify orders in the channel shape.  An order cancelled before anything was paid
    (financial status "voided") is void (scenario P11).
    tax_rounding_amount[_home] = the line and shipping tax lines less the order-level tax lines:
    what Shopify's once-per-order rounding of the tax took off (or added); the order-level figure
    is the tax owed (scenario S13, decisions.md). -#}
with component_tax as (
    select order_id, sum(amount) as amount, sum(amount_shop) as amount_shop
    from {{ ref('stg_shopify__tax_lines') }}
    group by order_id
)

select
    'shopify' as channel,
    cast(order_id as varchar) as order_id,
    order_number,
    customer_id,
    customer_email,
    customer_company,
    customer_type,
    currency,
    ordered_at,
    updated_at,
    cancelled_at,
    lower(financial_status) as platform_status,
    lower(financial_status) = 'voided' and cancelled_at is not null as is_void,
    taxes_included,
    tax_treatment,
    ship_country as country,
    ship_province as region,
    terms_days,
    due_on,
    case when taxes_included then shipping_price - shipping_tax else shipping_price end as shipping_amount,
    case when taxes_included then shipping_price_shop - shipping_tax_shop else shipping_price_shop end as shipping_amount_home,
    shipping_tax,
    shipping_tax_shop as shipping_tax_home,
    cast(coalesce(t.amount, 0) - o.order_tax_lines_amount as decimal(18, 2)) as tax_rounding_amount,
    cast(coalesce(t.amount_shop, 0) - o.order_tax_lines_amount_shop as decimal(18, 2)) as tax_rounding_amount_home
from {{ ref('stg_shopify__orders') }} as o
left join component_tax as t using (order_id)
