{{ config(enabled=('quickbooks' in var('channels'))) }}
{#- One row per QuickBooks sales receipt (a sale paid at the time it was made). -#}
select
    id as sales_receipt_id,
    doc_number,
    customer_id,
    customer_name,
    nullif({{ regex_extract('customer_name', '\\(([^()]+)\\)$', 1) }}, '') as customer_number,
    bill_email as customer_email,
    bill_country as country,
    upper(currency) as currency,
    cast(exchange_rate as decimal(18, 6)) as exchange_rate,
    cast(txn_date as date) as sold_on,
    cast(total_amt as decimal(18, 2)) as total_amount,
    cast(coalesce(total_tax, '0') as decimal(18, 2)) as tax_amount,
    cast(total_amt as decimal(18, 2)) - cast(coalesce(total_tax, '0') as decimal(18, 2)) as subtotal_amount,
    payment_ref_num,
    global_tax_calculation,
    private_note,
    coalesce(voided, false) as is_voided,
    coalesce(doc_number like 'INV-%', false) as is_published,
    deposit_account_id,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at,
    'quickbooks' as channel
from {{ source('quickbooks', 'sales_receipts') }}
where not coalesce(deleted, false)
