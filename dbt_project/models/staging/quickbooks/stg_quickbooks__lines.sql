{{ config(enabled=('quickbooks' in var('channels'))) }}
{#- One row per sales or discount line of a QuickBooks invoice or sales receipt (QBO's computed
    SubTotalLineDetail lines are left out). Discount lines carry a positive amount that reduces
    the document's subtotal. -#}
with docs as (
    select 'invoice' as document_type, id as document_id, lines from {{ source('quickbooks', 'invoices') }}
    where not coalesce(deleted, false)
    union all
    select 'sales_receipt', id, lines from {{ source('quickbooks', 'sales_receipts') }}
    where not coalesce(deleted, false)
),

lines as (
    select document_type, document_id, {{ json_elements('lines') }} as line
    from docs
)

select
    document_type,
    document_id,
    {{ json_text('line', '$.Id') }} as line_id,
    cast({{ json_text('line', '$.LineNum') }} as integer) as line_number,
    {{ json_text('line', '$.DetailType') }} as detail_type,
    {{ json_text('line', '$.Description') }} as description,
    -- the trade counter starts a goods line's description with the SKU: "<sku> · <title>"
    case when strpos({{ json_text('line', '$.Description') }}, ' · ') > 0 then split_part({{ json_text('line', '$.Description') }}, ' · ', 1) end as sku,
    case when strpos({{ json_text('line', '$.Description') }}, ' · ') > 0
         then substr({{ json_text('line', '$.Description') }}, length(split_part({{ json_text('line', '$.Description') }}, ' · ', 1)) + 4)
         else {{ json_text('line', '$.Description') }} end as title,
    {{ json_text('line', '$.SalesItemLineDetail.ItemRef.value') }} as item_id,
    {{ json_text('line', '$.SalesItemLineDetail.ItemRef.name') }} as item_name,
    {{ json_text('line', '$.SalesItemLineDetail.TaxCodeRef.value') }} as tax_code_id,
    -- the company's VAT codes (platforms/quickbooks/reference.py): 2 = 20 % S, 4 = 5 % R, others 0 %
    cast(case {{ json_text('line', '$.SalesItemLineDetail.TaxCodeRef.value') }} when '2' then 0.20 when '4' then 0.05 else 0
         end as decimal(9, 6)) as tax_rate,
    cast({{ json_text('line', '$.SalesItemLineDetail.Qty') }} as decimal(18, 4)) as quantity,
    cast({{ json_text('line', '$.SalesItemLineDetail.UnitPrice') }} as decimal(18, 4)) as unit_price,
    cast({{ json_text('line', '$.Amount') }} as decimal(18, 2)) as amount,
    'quickbooks' as channel
from lines
where {{ json_text('line', '$.DetailType') }} in ('SalesItemLineDetail', 'DiscountLineDetail')
