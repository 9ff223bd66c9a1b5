{{ config(enabled=('sap_business_one' in var('channels'))) }}
{#- One row per A/R invoice the warehouse desk raised in SAP Business One (cancellation documents,
    which B1 adds when an invoice is cancelled, are left out: the original carries Cancelled = tYES).
    Money in the document currency (`*_fc` for foreign documents, the local amount for GBP ones) and
    in GBP (`*_home`, B1's own local-currency amounts at the document's DocRate); times in UTC from the
    server-local date and time (Europe/London). -#}
select
    doc_entry as invoice_id,
    doc_num,
    'SB1-' || doc_num as invoice_number,
    card_code as customer_id,
    card_name as customer_company,
    upper(doc_currency) as currency,
    cast(doc_rate as decimal(18, 6)) as doc_rate,
    cast(doc_date as date) as doc_date,
    cast(doc_due_date as date) as due_on,
    timezone('Europe/London', cast(cast(doc_date as date) || ' ' || coalesce(doc_time, '00:00:00') as timestamp))
        as ordered_at,
    updated_at,
    cancelled = 'tYES' as is_cancelled,
    document_status,
    comments,
    upper({{ json_text('address_extension', '$.BillToCountry') }}) as country,
    nullif({{ json_text('address_extension', '$.BillToState') }}, '') as region,
    cast(case when upper(doc_currency) = 'GBP' then doc_total else doc_total_fc end as decimal(18, 2)) as total,
    cast(case when upper(doc_currency) = 'GBP' then vat_sum else vat_sum_fc end as decimal(18, 2)) as tax_total,
    cast(doc_total as decimal(18, 2)) as total_home,
    cast(vat_sum as decimal(18, 2)) as tax_total_home,
    document_lines
from {{ source('sap_business_one', 'invoices') }}
where coalesce(cancel_status, 'csNo') <> 'csCancellation'
