{{ config(enabled=('zoho_books' in var('channels'))) }}
{%- set line_shape = '[{"line_item_id": "VARCHAR", "item_order": "INTEGER", "sku": "VARCHAR", "name": "VARCHAR",
    "rate": "VARCHAR", "quantity": "VARCHAR", "discount": "VARCHAR", "item_total": "VARCHAR",
    "tax_percentage": "VARCHAR", "line_tax": "VARCHAR", "tax_id": "VARCHAR", "tax_exemption_id": "VARCHAR"}]' -%}
with lines as (
    select invoice_id, upper(currency_code) as currency, {{ json_rows('line_items', line_shape) }} as l
    from {{ source('zoho_books', 'invoices') }}
)

select
    invoice_id,
    cast({{ jget('l', 'line_item_id') }} as varchar) as line_id,
    cast({{ jget('l', 'item_order') }} as integer) as position,
    cast({{ jget('l', 'sku') }} as varchar) as sku,
    cast({{ jget('l', 'name') }} as varchar) as title,
    cast({{ jget('l', 'quantity') }} as decimal(18, 4)) as quantity,
    currency,
    cast({{ jget('l', 'rate') }} as decimal(18, 2)) as rate,
    cast(coalesce({{ jget('l', 'discount') }}, '0') as decimal(18, 2)) as discount,
    cast({{ jget('l', 'item_total') }} as decimal(18, 2)) as item_total,
    cast(coalesce({{ jget('l', 'line_tax') }}, '0') as decimal(18, 2)) as tax_amount,
    cast(cast(coalesce({{ jget('l', 'tax_percentage') }}, '0') as decimal(12, 6)) / 100 as decimal(12, 6)) as tax_rate,
    cast({{ jget('l', 'tax_id') }} as varchar) as tax_id,
    cast({{ jget('l', 'tax_exemption_id') }} as varchar) as tax_exemption_id,
    'zoho_books' as channel
from lines
