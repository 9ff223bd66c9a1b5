{{ config(enabled=('dynamics365' in var('channels'))) }}
{#- One row per sales invoice line: Item lines are goods, Account lines on the freight account
    (40250) are freight.  Amounts ex tax after the line discount, BC's tax per line. -#}
{%- set line_shape = '[{"id": "VARCHAR", "sequence": "BIGINT", "lineType": "VARCHAR", "lineObjectNumber": "VARCHAR",
    "description": "VARCHAR", "quantity": "VARCHAR", "unitPrice": "VARCHAR", "discountAmount": "VARCHAR",
    "amountExcludingTax": "VARCHAR", "taxCode": "VARCHAR", "taxPercent": "VARCHAR", "totalTaxAmount": "VARCHAR"}]' -%}

with lines as (
    select id as invoice_id, unnest(from_json(sales_invoice_lines, '{{ line_shape }}')) as l
    from {{ source('dynamics365', 'sales_invoices') }}
)

select
    invoice_id,
    l.id as line_id,
    l.sequence,
    l.lineType as line_type,
    l.lineObjectNumber as object_number,
    case when l.lineType = 'Account' and l.lineObjectNumber = '{{ var("dynamics365_freight_account", "40250") }}'
         then 'shipping' when l.lineType = 'Item' then 'goods' else 'other' end as kind,
    l.description,
    cast(cast(l.quantity as decimal(18, 4)) as integer) as quantity,
    cast(l.unitPrice as decimal(18, 4)) as unit_price,
    cast(l.discountAmount as decimal(18, 2)) as discount_amount,
    cast(l.amountExcludingTax as decimal(18, 2)) as amount_ex_tax,
    l.taxCode as tax_code,
    cast(cast(l.taxPercent as decimal(12, 6)) / 100 as decimal(12, 6)) as tax_rate,
    cast(l.totalTaxAmount as decimal(18, 2)) as tax_amount,
    'dynamics365' as channel
from lines
