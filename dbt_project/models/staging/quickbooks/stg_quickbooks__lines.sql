{{ config(enabled=var('quickbooks_source', false)) }}
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
    select document_type, document_id, unnest(cast(lines as json[])) as line
    from docs
)

select
    document_type,
    document_id,
    line ->> '$.Id' as line_id,
    cast(line ->> '$.LineNum' as integer) as line_number,
    line ->> '$.DetailType' as detail_type,
    line ->> '$.Description' as description,
    line ->> '$.SalesItemLineDetail.ItemRef.value' as item_id,
    line ->> '$.SalesItemLineDetail.ItemRef.name' as item_name,
    line ->> '$.SalesItemLineDetail.TaxCodeRef.value' as tax_code_id,
    cast(line ->> '$.SalesItemLineDetail.Qty' as decimal(18, 4)) as quantity,
    cast(line ->> '$.SalesItemLineDetail.UnitPrice' as decimal(18, 4)) as unit_price,
    cast(line ->> '$.Amount' as decimal(18, 2)) as amount,
    'quickbooks' as channel
from lines
where line ->> '$.DetailType' in ('SalesItemLineDetail', 'DiscountLineDetail')
