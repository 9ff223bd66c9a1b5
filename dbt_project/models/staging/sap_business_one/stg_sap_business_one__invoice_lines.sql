{{ config(enabled=('sap_business_one' in var('channels'))) }}
{#- One row per invoice line: quantity, unit price, the line's net amount and VAT in the document
    currency and in GBP (B1's LineTotal / TaxTotal), the VAT group and its rate. -#}
with lines as (
    select i.invoice_id, i.currency, {{ json_rows('i.document_lines', '["JSON"]') }} as line
    from {{ ref('stg_sap_business_one__invoices') }} as i
)

select
    invoice_id,
    cast(invoice_id as varchar) || '-' || {{ json_text('line', '$.LineNum') }} as line_id,
    cast({{ json_text('line', '$.LineNum') }} as integer) as line_num,
    {{ json_text('line', '$.ItemCode') }} as sku,
    {{ json_text('line', '$.ItemDescription') }} as title,
    cast({{ json_text('line', '$.Quantity') }} as decimal(18, 4)) as quantity,
    cast({{ json_text('line', '$.UnitPrice') }} as decimal(18, 4)) as unit_price,
    currency,
    {{ json_text('line', '$.VatGroup') }} as vat_group,
    cast(cast({{ json_text('line', '$.TaxPercentagePerRow') }} as decimal(12, 6)) / 100 as decimal(12, 6)) as tax_rate,
    cast(case when currency = 'GBP' then {{ json_text('line', '$.LineTotal') }}
              else {{ json_text('line', '$.RowTotalFC') }} end as decimal(18, 2)) as line_total,
    cast(case when currency = 'GBP' then {{ json_text('line', '$.TaxTotal') }}
              else {{ json_text('line', '$.NetTaxAmountFC') }} end as decimal(18, 2)) as tax_amount,
    cast({{ json_text('line', '$.LineTotal') }} as decimal(18, 2)) as line_total_home,
    cast({{ json_text('line', '$.TaxTotal') }} as decimal(18, 2)) as tax_amount_home
from lines
