{{ config(enabled=('sap_business_one' in var('channels'))) }}
{#- One row per invoice line: quantity, unit price, the line's net amount and VAT in the document
    currency and in GBP (B1's LineTotal / TaxTotal), the VAT group and its rate. -#}
with lines as (
    select i.invoice_id, i.currency, unnest(from_json(i.document_lines, '["JSON"]')) as line
    from {{ ref('stg_sap_business_one__invoices') }} as i
)

select
    invoice_id,
    cast(invoice_id as varchar) || '-' || json_extract_string(line, '$.LineNum') as line_id,
    cast(json_extract_string(line, '$.LineNum') as integer) as line_num,
    json_extract_string(line, '$.ItemCode') as sku,
    json_extract_string(line, '$.ItemDescription') as title,
    cast(json_extract_string(line, '$.Quantity') as decimal(18, 4)) as quantity,
    cast(json_extract_string(line, '$.UnitPrice') as decimal(18, 4)) as unit_price,
    currency,
    json_extract_string(line, '$.VatGroup') as vat_group,
    cast(cast(json_extract_string(line, '$.TaxPercentagePerRow') as decimal(12, 6)) / 100 as decimal(12, 6)) as tax_rate,
    cast(case when currency = 'GBP' then json_extract_string(line, '$.LineTotal')
              else json_extract_string(line, '$.RowTotalFC') end as decimal(18, 2)) as line_total,
    cast(case when currency = 'GBP' then json_extract_string(line, '$.TaxTotal')
              else json_extract_string(line, '$.NetTaxAmountFC') end as decimal(18, 2)) as tax_amount,
    cast(json_extract_string(line, '$.LineTotal') as decimal(18, 2)) as line_total_home,
    cast(json_extract_string(line, '$.TaxTotal') as decimal(18, 2)) as tax_amount_home
from lines
