{{ config(enabled=('zoho_books' in var('channels'))) }}
with applied as (
    select payment_id, unnest(from_json(invoices, '[{"invoice_id": "VARCHAR", "invoice_number": "VARCHAR",
                                                    "amount_applied": "VARCHAR"}]')) as a
    from {{ source('zoho_books', 'customer_payments') }}
)

select
    payment_id,
    a.invoice_id,
    a.invoice_number,
    cast(a.amount_applied as decimal(18, 2)) as amount_applied,
    'zoho_books' as channel
from applied
