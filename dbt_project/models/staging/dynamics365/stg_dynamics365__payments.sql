{{ config(enabled=('dynamics365' in var('channels'))) }}
{#- One row per customer payment line (a bank transfer the bookkeeper recorded against an invoice),
    in the company's local currency. -#}
select
    id as payment_id,
    applies_to_invoice_id as invoice_id,
    applies_to_invoice_number as invoice_number,
    customer_number,
    cast(posting_date as date) as posting_date,
    cast(posting_date || ' 00:00:00+00' as timestamptz) as paid_at,
    cast(amount as decimal(18, 2)) as amount,
    document_number,
    external_document_number,
    journal_display_name,
    last_modified_date_time as updated_at,
    'dynamics365' as channel
from {{ source('dynamics365', 'customer_payments') }}
