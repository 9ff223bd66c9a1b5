{{ config(enabled=('paypal' in var('channels'))) }}
{#- PayPal Checkout orders (the GBP storefront's retail buyers) in the channel shape.  The site
    sends PayPal tax-exclusive prices with UK VAT per unit, so nothing is VAT-inclusive here. -#}
select
    'paypal' as channel,
    order_id,
    invoice_id as order_number,
    payer_id as customer_id,
    payer_email as customer_email,
    cast(null as varchar) as customer_company,
    'retail' as customer_type,
    currency,
    created_at as ordered_at,
    updated_at,
    cast(null as timestamptz) as cancelled_at,
    lower(status) as platform_status,
    false as is_void,
    false as taxes_included,
    case when country = 'GB' then 'uk_vat' end as tax_treatment,
    country,
    cast(null as varchar) as region,
    cast(null as integer) as terms_days,
    cast(null as date) as due_on,
    shipping as shipping_amount,
    case when currency = '{{ var("home_currency") }}' then shipping end as shipping_amount_home,
    cast(0 as decimal(18, 2)) as shipping_tax,
    cast(0 as decimal(18, 2)) as shipping_tax_home
from {{ ref('stg_paypal__orders') }}
