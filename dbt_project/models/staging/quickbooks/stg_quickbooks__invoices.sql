{{ config(enabled=('quickbooks' in var('channels'))) }}
{#- One row per QuickBooks invoice.  `is_published` marks those the pipeline wrote (numbers `INV-…`,
    from the marts): they are other channels' sales, not the trade counter's. -#}
select
    id as invoice_id,
    doc_number,
    customer_id,
    customer_name,
    -- the business keeps its master account number at the end of the display name: "Name (C000012)"
    nullif({{ regex_extract('customer_name', '\\(([^()]+)\\)$', 1) }}, '') as customer_number,
    bill_email as customer_email,
    bill_country as country,
    upper(currency) as currency,
    cast(exchange_rate as decimal(18, 6)) as exchange_rate,
    cast(txn_date as date) as issued_on,
    cast(due_date as date) as due_on,
    cast(total_amt as decimal(18, 2)) as total_amount,
    cast(coalesce(total_tax, '0') as decimal(18, 2)) as tax_amount,
    cast(total_amt as decimal(18, 2)) - cast(coalesce(total_tax, '0') as decimal(18, 2)) as subtotal_amount,
    cast(balance as decimal(18, 2)) as open_amount,
    global_tax_calculation,
    private_note,
    coalesce(voided, false) as is_voided,
    coalesce(doc_number like 'INV-%', false) as is_published,
    cast(sync_token as integer) as sync_token,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at,
    'quickbooks' as channel
from {{ source('quickbooks', 'invoices') }}
where not coalesce(deleted, false)
