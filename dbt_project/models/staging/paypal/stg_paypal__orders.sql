{{ config(enabled=('paypal' in var('channels'))) }}
{#- One row per PayPal Checkout order (Orders v2, one purchase unit), tax-exclusive breakdown. -#}
{%- set m = '{"currency_code": "VARCHAR", "value": "VARCHAR"}' -%}
with parsed as (
    select *,
        {{ jindex(json_parse('purchase_units', '[{"invoice_id": "VARCHAR", "amount": {"currency_code": "VARCHAR", "value": "VARCHAR", "breakdown": {"item_total": ' ~ m ~ ', "tax_total": ' ~ m ~ ', "shipping": ' ~ m ~ ', "discount": ' ~ m ~ '}}}]'), 1) }} as pu,
        {{ json_parse('payer', '{"payer_id": "VARCHAR", "email_address": "VARCHAR", "name": {"given_name": "VARCHAR", "surname": "VARCHAR"}, "address": {"country_code": "VARCHAR"}}') }} as p
    from {{ source('paypal', 'orders') }}
)

select
    id as order_id,
    status,
    create_time as created_at,
    update_time as updated_at,
    {{ jget('pu', 'invoice_id') }} as invoice_id,
    upper({{ jget('pu', 'amount.currency_code') }}) as currency,
    cast({{ jget('pu', 'amount.value') }} as decimal(18, 2)) as total,
    cast({{ jget('pu', 'amount.breakdown.item_total.value') }} as decimal(18, 2)) as item_total,
    cast(coalesce({{ jget('pu', 'amount.breakdown.tax_total.value') }}, '0') as decimal(18, 2)) as tax_total,
    cast(coalesce({{ jget('pu', 'amount.breakdown.shipping.value') }}, '0') as decimal(18, 2)) as shipping,
    cast(coalesce({{ jget('pu', 'amount.breakdown.discount.value') }}, '0') as decimal(18, 2)) as discount,
    {{ jget('p', 'payer_id') }} as payer_id,
    {{ jget('p', 'email_address') }} as payer_email,
    {{ jget('p', 'name.given_name') }} || ' ' || {{ jget('p', 'name.surname') }} as payer_name,
    upper({{ jget('p', 'address.country_code') }}) as country,
    'paypal' as channel
from parsed
