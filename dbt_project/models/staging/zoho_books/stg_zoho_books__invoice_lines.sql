{{ config(enabled=('zoho_books' in var('channels'))) }}
{%- set line_shape = '[{"line_item_id": "VARCHAR", "item_order": "INTEGER", "sku": "VARCHAR", "name": "VARCHAR",
    "rate": "VARCHAR", "quantity": "VARCHAR", "discount": "VARCHAR", "item_total": "VARCHAR",
    "tax_percentage": "VARCHAR", "line_tax": "VARCHAR", "tax_id": "VARCHAR", "tax_exemption_id": "VARCHAR"}]' -%}
with lines as (
    select invoice_id, upper(currency_code) as currency, unnest(from_json(line_items, '{{ line_shape }}')) as l
    from {{ source('zoho_books', 'invoices') }}
)

select
    invoice_id,
    l.line_item_id as line_id,
    l.item_order as position,
    l.sku,
    l.name as title,
    cast(l.quantity as decimal(18, 4)) as quantity,
    currency,
    cast(l.rate as decimal(18, 2)) as rate,
    cast(coalesce(l.discount, '0') as decimal(18, 2)) as discount,
    cast(l.item_total as decimal(18, 2)) as item_total,
    cast(coalesce(l.line_tax, '0') as decimal(18, 2)) as tax_amount,
    cast(cast(coalesce(l.tax_percentage, '0') as decimal(12, 6)) / 100 as decimal(12, 6)) as tax_rate,
    l.tax_id,
    l.tax_exemption_id,
    'zoho_books' as channel
from lines
