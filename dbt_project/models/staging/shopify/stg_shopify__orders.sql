{{ config(enabled=('shopify' in var('channels'))) }}
{#- One row per Shopify order.

    Money columns are the presentment (buyer currency) amounts from each `*_set` MoneyBag, as
    DECIMAL(18,2); the `_shop` columns are the shop money (GBP) Shopify converted itself.
    `order_tax_lines_amount[_shop]` sum the order-level `tax_lines`: the tax Shopify charged on the
    order, which can differ by a cent or two from the sum of the line and shipping tax lines when it
    rounded once per order (scenario S13).
    `customer_type` is 'trade' for B2B orders (payment terms, or the tag `trade`); the tax
    treatment follows from it and the ship-to country. -#}
{%- set eu = "'AT','BE','BG','HR','CY','CZ','DK','EE','FI','FR','DE','GR','HU','IE','IT','LV','LT','LU','MT','NL','PL','PT','RO','SK','SI','ES','SE'" -%}
{%- set bag = '{"shop_money": {"amount": "VARCHAR"}, "presentment_money": {"amount": "VARCHAR"}}' -%}
{%- set shipping_shape = '[{"price_set": ' ~ bag ~ ', "tax_lines": [{"price_set": ' ~ bag ~ '}]}]' -%}
{%- set tax_shape = '[{"price_set": ' ~ bag ~ '}]' -%}

with orders as (
    select * from {{ source('shopify', 'orders') }}
),

parsed as (
    select
        *,
        {{ json_parse('shipping_lines', shipping_shape) }} as shipping,
        {{ json_parse('tax_lines', tax_shape) }} as order_taxes,
        upper(coalesce(
            {{ json_text('shipping_address', '$.country_code') }},
            {{ json_text('billing_address', '$.country_code') }}
        )) as ship_country,
        coalesce(
            {{ json_text('shipping_address', '$.province_code') }},
            {{ json_text('billing_address', '$.province_code') }}
        ) as ship_province,
        payment_terms is not null and payment_terms <> 'null'
            or {{ split_has("replace(coalesce(tags, ''), ' ', '')", ',', 'trade') }} as is_trade
    from orders
)

select
    id as order_id,
    name as order_number,
    {{ json_text('customer', '$.id') }} as customer_id,
    coalesce({{ json_text('customer', '$.email') }}, email) as customer_email,
    coalesce(
        {{ json_text('billing_address', '$.company') }},
        {{ json_text('shipping_address', '$.company') }},
        {{ json_text('customer', '$.default_address.company') }}
    ) as customer_company,
    case when is_trade then 'trade' else 'retail' end as customer_type,
    upper(presentment_currency) as currency,
    upper(currency) as shop_currency,
    created_at as ordered_at,
    updated_at,
    cancelled_at,
    cancel_reason,
    closed_at,
    financial_status,
    fulfillment_status,
    taxes_included,
    source_name,
    tags,
    ship_country,
    ship_province,
    {{ json_text('payment_terms', '$.payment_terms_name') }} as payment_terms_name,
    cast({{ json_text('payment_terms', '$.due_in_days') }} as integer) as terms_days,
    cast(timezone('{{ var("business_timezone", "Europe/London") }}',
                  cast({{ json_text('payment_terms', '$.payment_schedules[0].due_at') }} as timestamptz)) as date) as due_on,
    nullif({{ jlist_join('discount_codes', '[{"code": "VARCHAR"}]', 'code', ', ') }}, '') as discount_codes,
    cast({{ json_text('total_price_set', '$.presentment_money.amount') }} as decimal(18, 2)) as total_price,
    cast({{ json_text('subtotal_price_set', '$.presentment_money.amount') }} as decimal(18, 2)) as subtotal_price,
    cast({{ json_text('total_tax_set', '$.presentment_money.amount') }} as decimal(18, 2)) as total_tax,
    cast({{ json_text('total_discounts_set', '$.presentment_money.amount') }} as decimal(18, 2)) as total_discounts,
    cast(coalesce({{ jsum('shipping', 'price_set.presentment_money.amount', 'decimal(18, 2)') }}, 0)
         as decimal(18, 2)) as shipping_price,
    cast(coalesce({{ jsum_nested('shipping', 'tax_lines', 'price_set.presentment_money.amount', 'decimal(18, 2)') }}, 0)
         as decimal(18, 2)) as shipping_tax,
    cast(coalesce({{ jsum('order_taxes', 'price_set.presentment_money.amount', 'decimal(18, 2)') }}, 0)
         as decimal(18, 2)) as order_tax_lines_amount,
    cast(coalesce({{ jsum('order_taxes', 'price_set.shop_money.amount', 'decimal(18, 2)') }}, 0)
         as decimal(18, 2)) as order_tax_lines_amount_shop,
    cast({{ json_text('total_price_set', '$.shop_money.amount') }} as decimal(18, 2)) as total_price_shop,
    cast({{ json_text('subtotal_price_set', '$.shop_money.amount') }} as decimal(18, 2)) as subtotal_price_shop,
    cast({{ json_text('total_tax_set', '$.shop_money.amount') }} as decimal(18, 2)) as total_tax_shop,
    cast({{ json_text('total_discounts_set', '$.shop_money.amount') }} as decimal(18, 2)) as total_discounts_shop,
    cast(coalesce({{ jsum('shipping', 'price_set.shop_money.amount', 'decimal(18, 2)') }}, 0)
         as decimal(18, 2)) as shipping_price_shop,
    cast(coalesce({{ jsum_nested('shipping', 'tax_lines', 'price_set.shop_money.amount', 'decimal(18, 2)') }}, 0)
         as decimal(18, 2)) as shipping_tax_shop,
    cast({{ json_text('current_total_price_set', '$.presentment_money.amount') }} as decimal(18, 2)) as current_total_price,
    cast({{ json_text('current_total_price_set', '$.shop_money.amount') }} as decimal(18, 2)) as current_total_price_shop,
    case
        when ship_country = 'GB' then 'uk_vat'
        when is_trade then
            case when ship_country = 'US' then 'us_resale_exempt'
                 when ship_country in ({{ eu }}) then 'eu_reverse_charge'
                 else 'export_zero_rated' end
        else
            case when ship_country = 'US' then 'us_sales_tax'
                 when ship_country = 'AU' then 'au_gst'
                 when ship_country in ({{ eu }}) then 'eu_oss_vat'
                 else 'export_zero_rated' end
    end as tax_treatment,
    'shopify' as channel
from parsed
