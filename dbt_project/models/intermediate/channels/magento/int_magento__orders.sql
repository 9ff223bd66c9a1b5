{{ config(enabled=('magento' in var('channels'))) }}
{#- Magento orders in the channel shape; home amounts are the base-currency (GBP) amounts Magento
    converted itself.  An order with nothing paid (a canceled payment) is void. -#}
select
    'magento' as channel,
    cast(order_id as varchar) as order_id,
    order_number,
    customer_id,
    customer_email,
    customer_company,
    'retail' as customer_type,
    currency,
    ordered_at,
    updated_at,
    cast(case when state = 'canceled' then updated_at end as timestamptz) as cancelled_at,
    state as platform_status,
    not is_paid as is_void,
    true as taxes_included,
    case when country = 'GB' then 'uk_vat' else 'export_zero_rated' end as tax_treatment,
    country,
    region,
    cast(null as integer) as terms_days,
    cast(null as date) as due_on,
    shipping_amount,
    shipping_amount_base as shipping_amount_home,
    shipping_tax,
    shipping_tax_base as shipping_tax_home
from {{ ref('stg_magento__orders') }}
