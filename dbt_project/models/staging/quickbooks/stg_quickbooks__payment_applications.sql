{{ config(enabled=('quickbooks' in var('channels'))) }}
{#- One row per invoice a QuickBooks payment is applied to (a payment line's `LinkedTxn` of type
    Invoice), with the amount applied to it. -#}
with lines as (
    select id as payment_id, {{ json_elements('lines') }} as line
    from {{ source('quickbooks', 'payments') }}
    where not coalesce(deleted, false)
),

links as (
    select payment_id, line, {{ json_elements(json_at('line', '$.LinkedTxn')) }} as link
    from lines
)

select
    payment_id,
    {{ json_text('link', '$.TxnId') }} as invoice_id,
    cast({{ json_text('line', '$.Amount') }} as decimal(18, 2)) as amount_applied,
    'quickbooks' as channel
from links
where {{ json_text('link', '$.TxnType') }} = 'Invoice'
