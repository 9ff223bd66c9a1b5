{{ config(enabled=var('quickbooks_source', false)) }}
{#- One row per QuickBooks invoice. -#}
select
    id as invoice_id,
    doc_number,
    customer_id,
    customer_name,
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
    cast(sync_token as integer) as sync_token,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at,
    'quickbooks' as channel
from {{ source('quickbooks', 'invoices') }}
where not coalesce(deleted, false)
