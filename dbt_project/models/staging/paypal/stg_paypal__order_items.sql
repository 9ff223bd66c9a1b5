{{ config(enabled=('paypal' in var('channels'))) }}
{#- One row per order item: `unit_amount` ex tax and `unit_tax` per unit, quantity as a number
    (PayPal sends it as a string). -#}
{%- set m = '{"value": "VARCHAR"}' -%}
with items as (
    select id as order_id,
        unnest(from_json(purchase_units, '[{"items": [{"name": "VARCHAR", "sku": "VARCHAR", "quantity": "VARCHAR", "unit_amount": {{ m }}, "tax": {{ m }}}]}]')[1].items) as i,
        generate_subscripts(from_json(purchase_units, '[{"items": [{"sku": "VARCHAR"}]}]')[1].items, 1) as position
    from {{ source('paypal', 'orders') }}
)

select
    order_id,
    order_id || '-' || position as line_id,
    position,
    i.sku,
    i.name,
    cast(i.quantity as integer) as quantity,
    cast(i.unit_amount.value as decimal(18, 2)) as unit_amount,
    cast(coalesce(i.tax.value, '0') as decimal(18, 2)) as unit_tax,
    'paypal' as channel
from items
