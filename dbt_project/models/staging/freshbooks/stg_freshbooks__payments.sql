{{ config(enabled=('freshbooks' in var('channels'))) }}
{#- Payments recorded against invoices.  For a foreign-currency payment the note states the
    sterling the bank credited ("…; GBP 1234.56 credited"). -#}
select
    id as payment_id,
    invoiceid as invoice_id,
    clientid as client_id,
    cast(amount as decimal(18, 2)) as amount,
    upper(currency_code) as currency,
    cast(date as date) as paid_on,
    type as payment_type,
    note,
    cast(nullif({{ regex_extract('note', 'GBP ([0-9.]+) credited', 1) }}, '') as decimal(18, 2)) as amount_gbp,
    updated_at,
    vis_state,
    vis_state = 1 as is_deleted,
    'freshbooks' as channel
from {{ source('freshbooks', 'payments') }}
