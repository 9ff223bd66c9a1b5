{{ config(enabled=('zoho_books' in var('channels'))) }}
with applied as (
    select payment_id, {{ json_rows('invoices', '[{"invoice_id": "VARCHAR", "invoice_number": "VARCHAR",
                                                    "amount_applied": "VARCHAR"}]') }} as a
    from {{ source('zoho_books', 'customer_payments') }}
)

select
    payment_id,
    cast({{ jget('a', 'invoice_id') }} as varchar) as invoice_id,
    cast({{ jget('a', 'invoice_number') }} as varchar) as invoice_number,
    cast({{ jget('a', 'amount_applied') }} as decimal(18, 2)) as amount_applied,
    'zoho_books' as channel
from applied
