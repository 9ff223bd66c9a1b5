{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- One row per WooCommerce order.  Money as DECIMAL(18,2) in the order currency; timestamps
    from the `*_gmt` fields (UTC).  `fx_rate` is the GBP rate of the order the store's
    multi-currency plugin recorded in `meta_data` (`_base_currency_exchange_rate`, units of the
    base currency GBP per unit of the order currency); 1 for an order in the base currency. -#}
{%- set eu = "'AT','BE','BG','HR','CY','CZ','DK','EE','FI','FR','DE','GR','HU','IE','IT','LV','LT','LU','MT','NL','PL','PT','RO','SK','SI','ES','SE'" -%}

with orders as (
    select
        *,
        {{ json_parse('meta_data', '[{"key": "VARCHAR", "value": "VARCHAR"}]') }} as meta,
        {{ json_parse('tax_lines', '[{"rate_id": "BIGINT", "rate_percent": "JSON", "label": "VARCHAR"}]') }} as taxes,
        upper(coalesce(nullif({{ json_text('shipping', '$.country') }}, ''),
                       {{ json_text('billing', '$.country') }})) as ship_country
    from {{ source('woocommerce', 'orders') }}
)

select
    id as order_id,
    number as order_number,
    nullif(cast(customer_id as varchar), '0') as customer_id,
    {{ json_text('billing', '$.email') }} as customer_email,
    nullif({{ json_text('billing', '$.company') }}, '') as customer_company,
    status,
    upper(currency) as currency,
    prices_include_tax as taxes_included,
    date_created_gmt as ordered_at,
    date_modified_gmt as updated_at,
    date_paid_gmt as paid_at,
    date_completed_gmt as completed_at,
    payment_method,
    payment_method_title,
    nullif(transaction_id, '') as transaction_id,
    ship_country,
    nullif({{ json_text('shipping', '$.state') }}, '') as ship_state,
    case when ship_country = 'GB' then 'uk_vat'
         when ship_country in ({{ eu }}) then 'eu_oss_vat'
         when ship_country = 'US' then 'us_sales_tax'
         when ship_country = 'AU' then 'au_gst'
         else 'export_zero_rated' end as tax_treatment,
    -- rate_percent is a JSON number (23, 7.5): read as JSON text, so no binary float is involved
    cast(coalesce({{ jsum_of('taxes', 'cast(' ~ jget('x__', 'rate_percent') ~ ' as varchar)', 'decimal(12, 6)') }}, 0)
         / 100 as decimal(12, 6)) as tax_rate,
    cast(total as decimal(18, 2)) as total,
    cast(total_tax as decimal(18, 2)) as total_tax,
    cast(cart_tax as decimal(18, 2)) as cart_tax,
    cast(shipping_total as decimal(18, 2)) as shipping_total,
    cast(shipping_tax as decimal(18, 2)) as shipping_tax,
    cast(discount_total as decimal(18, 2)) as discount_total,
    cast(discount_tax as decimal(18, 2)) as discount_tax,
    coalesce({{ jfind('meta', 'key', '_order_base_currency', 'value') }}, upper(currency)) as base_currency,
    cast(coalesce({{ jfind('meta', 'key', '_base_currency_exchange_rate', 'value') }}, '1') as decimal(18, 6)) as fx_rate,
    customer_note,
    'woocommerce' as channel
from orders
