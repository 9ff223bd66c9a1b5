{{ config(enabled=('magento' in var('channels'))) }}
{#- One row per Magento order.  Money as DECIMAL(18,2) in the order currency, with `_base`
    columns in the base currency (GBP, the store's own conversion).  The order-level discount is
    turned positive.  Paid = something was paid (`total_paid` > 0). -#}
select
    entity_id as order_id,
    increment_id as order_number,
    cast(customer_id as varchar) as customer_id,
    customer_email,
    nullif({{ json_text('billing_address', '$.company') }}, '') as customer_company,
    state,
    status,
    upper(order_currency_code) as currency,
    upper(base_currency_code) as base_currency,
    created_at as ordered_at,
    updated_at,
    upper({{ json_text('billing_address', '$.country_id') }}) as country,
    {{ json_text('billing_address', '$.region_code') }} as region,
    {{ json_text('payment', '$.method') }} as payment_method,
    {{ json_text('payment', '$.last_trans_id') }} as transaction_id,
    cast(total_paid as decimal(18, 2)) > 0 as is_paid,
    cast(subtotal_incl_tax as decimal(18, 2)) as subtotal_incl_tax,
    cast(-cast(discount_amount as decimal(18, 2)) as decimal(18, 2)) as discount_amount,
    cast(shipping_amount as decimal(18, 2)) as shipping_amount,
    cast(shipping_tax_amount as decimal(18, 2)) as shipping_tax,
    cast(tax_amount as decimal(18, 2)) as tax_amount,
    cast(grand_total as decimal(18, 2)) as grand_total,
    cast(total_paid as decimal(18, 2)) as total_paid,
    cast(total_refunded as decimal(18, 2)) as total_refunded,
    cast(base_grand_total as decimal(18, 2)) as grand_total_base,
    cast(base_shipping_amount as decimal(18, 2)) as shipping_amount_base,
    cast(base_shipping_tax_amount as decimal(18, 2)) as shipping_tax_base,
    cast(base_to_order_rate as decimal(18, 6)) as base_to_order_rate,
    'magento' as channel
from {{ source('magento', 'orders') }}
