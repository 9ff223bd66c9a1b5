{{ config(enabled=('paypal' in var('channels'))) }}
{#- One row per order item: `unit_amount` ex tax and `unit_tax` per unit, quantity as a number
    (PayPal sends it as a string). -#}
{%- set m = '{"value": "VARCHAR"}' -%}
{%- set units = '[{"items": [{"name": "VARCHAR", "sku": "VARCHAR", "quantity": "VARCHAR", "unit_amount": ' ~ m ~ ', "tax": ' ~ m ~ '}]}]' -%}
with items as (
    select id as order_id,
        {{ jlist_rows(jlist(jindex(json_parse('purchase_units', units), 1), 'items')) }} as i,
        {{ jlist_positions(jlist(jindex(json_parse('purchase_units', '[{"items": [{"sku": "VARCHAR"}]}]'), 1), 'items')) }} as position
    from {{ source('paypal', 'orders') }}
)

select
    order_id,
    order_id || '-' || position as line_id,
    position,
    cast({{ jget('i', 'sku') }} as varchar) as sku,
    cast({{ jget('i', 'name') }} as varchar) as name,
    cast({{ jget('i', 'quantity') }} as integer) as quantity,
    cast({{ jget('i', 'unit_amount.value') }} as decimal(18, 2)) as unit_amount,
    cast(coalesce({{ jget('i', 'tax.value') }}, '0') as decimal(18, 2)) as unit_tax,
    'paypal' as channel
from items
