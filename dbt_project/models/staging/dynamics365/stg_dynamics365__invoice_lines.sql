{{ config(enabled=('dynamics365' in var('channels'))) }}
{#- One row per sales invoice line: Item lines are goods, Account lines on the freight account
    (40250) are freight.  Amounts ex tax after the line discount, BC's tax per line. -#}
{%- set line_shape = '[{"id": "VARCHAR", "sequence": "BIGINT", "lineType": "VARCHAR", "lineObjectNumber": "VARCHAR",
    "description": "VARCHAR", "quantity": "VARCHAR", "unitPrice": "VARCHAR", "discountAmount": "VARCHAR",
    "amountExcludingTax": "VARCHAR", "taxCode": "VARCHAR", "taxPercent": "VARCHAR", "totalTaxAmount": "VARCHAR"}]' -%}

with lines as (
    select id as invoice_id, {{ json_rows('sales_invoice_lines', line_shape) }} as l
    from {{ source('dynamics365', 'sales_invoices') }}
)

select
    invoice_id,
    cast({{ jget('l', 'id') }} as varchar) as line_id,
    cast({{ jget('l', 'sequence') }} as bigint) as sequence,
    cast({{ jget('l', 'lineType') }} as varchar) as line_type,
    cast({{ jget('l', 'lineObjectNumber') }} as varchar) as object_number,
    case when {{ jget('l', 'lineType') }} = 'Account' and {{ jget('l', 'lineObjectNumber') }} = '{{ var("dynamics365_freight_account", "40250") }}'
         then 'shipping' when {{ jget('l', 'lineType') }} = 'Item' then 'goods' else 'other' end as kind,
    cast({{ jget('l', 'description') }} as varchar) as description,
    cast(cast({{ jget('l', 'quantity') }} as decimal(18, 4)) as integer) as quantity,
    cast({{ jget('l', 'unitPrice') }} as decimal(18, 4)) as unit_price,
    cast({{ jget('l', 'discountAmount') }} as decimal(18, 2)) as discount_amount,
    cast({{ jget('l', 'amountExcludingTax') }} as decimal(18, 2)) as amount_ex_tax,
    cast({{ jget('l', 'taxCode') }} as varchar) as tax_code,
    cast(cast({{ jget('l', 'taxPercent') }} as decimal(12, 6)) / 100 as decimal(12, 6)) as tax_rate,
    cast({{ jget('l', 'totalTaxAmount') }} as decimal(18, 2)) as tax_amount,
    'dynamics365' as channel
from lines
