{{ config(enabled=('paypal' in var('channels'))) }}
{#- One row per PayPal Checkout order (Orders v2, one purchase unit), tax-exclusive breakdown. -#}
{%- set m = '{"currency_code": "VARCHAR", "value": "VARCHAR"}' -%}
with parsed as (
    select *,
        from_json(purchase_units, '[{"invoice_id": "VARCHAR", "amount": {"currency_code": "VARCHAR", "value": "VARCHAR", "breakdown": {"item_total": {{ m }}, "tax_total": {{ m }}, "shipping": {{ m }}, "discount": {{ m }}}}}]')[1] as pu,
        from_json(payer, '{"payer_id": "VARCHAR", "email_address": "VARCHAR", "name": {"given_name": "VARCHAR", "surname": "VARCHAR"}, "address": {"country_code": "VARCHAR"}}') as p
    from {{ source('paypal', 'orders') }}
)

select
    id as order_id,
    status,
    create_time as created_at,
    update_time as updated_at,
    pu.invoice_id,
    upper(pu.amount.currency_code) as currency,
    cast(pu.amount.value as decimal(18, 2)) as total,
    cast(pu.amount.breakdown.item_total.value as decimal(18, 2)) as item_total,
    cast(coalesce(pu.amount.breakdown.tax_total.value, '0') as decimal(18, 2)) as tax_total,
    cast(coalesce(pu.amount.breakdown.shipping.value, '0') as decimal(18, 2)) as shipping,
    cast(coalesce(pu.amount.breakdown.discount.value, '0') as decimal(18, 2)) as discount,
    p.payer_id,
    p.email_address as payer_email,
    p.name.given_name || ' ' || p.name.surname as payer_name,
    upper(p.address.country_code) as country,
    'paypal' as channel
from parsed
