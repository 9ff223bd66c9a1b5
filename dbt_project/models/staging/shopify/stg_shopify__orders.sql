{{ config(enabled=('shopify' in var('channels'))) }}
{#- One row per Shopify order.

    Money columns are the presentment (buyer currency) amounts from each `*_set` MoneyBag, as
    DECIMAL(18,2); the `_shop` columns are the shop money (GBP) Shopify converted itself.
    `customer_type` is 'trade' for B2B orders (payment terms, or the tag `trade`); the tax
    treatment follows from it and the ship-to country. -#}
{%- set eu = "'AT','BE','BG','HR','CY','CZ','DK','EE','FI','FR','DE','GR','HU','IE','IT','LV','LT','LU','MT','NL','PL','PT','RO','SK','SI','ES','SE'" -%}
{%- set bag = '{"shop_money": {"amount": "VARCHAR"}, "presentment_money": {"amount": "VARCHAR"}}' -%}
{%- set shipping_shape = '[{"price_set": ' ~ bag ~ ', "tax_lines": [{"price_set": ' ~ bag ~ '}]}]' -%}

with orders as (
    select * from {{ source('shopify', 'orders') }}
),

parsed as (
    select
        *,
        from_json(shipping_lines, '{{ shipping_shape }}') as shipping,
        upper(coalesce(
            json_extract_string(shipping_address, '$.country_code'),
            json_extract_string(billing_address, '$.country_code')
        )) as ship_country,
        coalesce(
            json_extract_string(shipping_address, '$.province_code'),
            json_extract_string(billing_address, '$.province_code')
        ) as ship_province,
        payment_terms is not null and payment_terms <> 'null'
            or list_contains(string_split(replace(coalesce(tags, ''), ' ', ''), ','), 'trade') as is_trade
    from orders
)

select
    id as order_id,
    name as order_number,
    json_extract_string(customer, '$.id') as customer_id,
    coalesce(json_extract_string(customer, '$.email'), email) as customer_email,
    coalesce(
        json_extract_string(billing_address, '$.company'),
        json_extract_string(shipping_address, '$.company'),
        json_extract_string(customer, '$.default_address.company')
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
    json_extract_string(payment_terms, '$.payment_terms_name') as payment_terms_name,
    cast(json_extract_string(payment_terms, '$.due_in_days') as integer) as terms_days,
    cast(timezone('{{ var("business_timezone", "Europe/London") }}',
                  cast(json_extract_string(payment_terms, '$.payment_schedules[0].due_at') as timestamptz)) as date) as due_on,
    nullif(array_to_string(
        [c.code for c in from_json(discount_codes, '[{"code": "VARCHAR"}]')], ', '), '') as discount_codes,
    cast(json_extract_string(total_price_set, '$.presentment_money.amount') as decimal(18, 2)) as total_price,
    cast(json_extract_string(subtotal_price_set, '$.presentment_money.amount') as decimal(18, 2)) as subtotal_price,
    cast(json_extract_string(total_tax_set, '$.presentment_money.amount') as decimal(18, 2)) as total_tax,
    cast(json_extract_string(total_discounts_set, '$.presentment_money.amount') as decimal(18, 2)) as total_discounts,
    cast(coalesce(list_sum([cast(s.price_set.presentment_money.amount as decimal(18, 2)) for s in shipping]), 0)
         as decimal(18, 2)) as shipping_price,
    cast(coalesce(list_sum([coalesce(list_sum([cast(t.price_set.presentment_money.amount as decimal(18, 2))
                                               for t in s.tax_lines]), 0) for s in shipping]), 0)
         as decimal(18, 2)) as shipping_tax,
    cast(json_extract_string(total_price_set, '$.shop_money.amount') as decimal(18, 2)) as total_price_shop,
    cast(json_extract_string(subtotal_price_set, '$.shop_money.amount') as decimal(18, 2)) as subtotal_price_shop,
    cast(json_extract_string(total_tax_set, '$.shop_money.amount') as decimal(18, 2)) as total_tax_shop,
    cast(json_extract_string(total_discounts_set, '$.shop_money.amount') as decimal(18, 2)) as total_discounts_shop,
    cast(coalesce(list_sum([cast(s.price_set.shop_money.amount as decimal(18, 2)) for s in shipping]), 0)
         as decimal(18, 2)) as shipping_price_shop,
    cast(coalesce(list_sum([coalesce(list_sum([cast(t.price_set.shop_money.amount as decimal(18, 2))
                                               for t in s.tax_lines]), 0) for s in shipping]), 0)
         as decimal(18, 2)) as shipping_tax_shop,
    cast(json_extract_string(current_total_price_set, '$.presentment_money.amount') as decimal(18, 2)) as current_total_price,
    cast(json_extract_string(current_total_price_set, '$.shop_money.amount') as decimal(18, 2)) as current_total_price_shop,
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
