{{ config(enabled=('zoho_books' in var('channels'))) }}
select
    payment_id,
    payment_number,
    customer_id as contact_id,
    cast("date" as date) as paid_on,
    payment_mode,
    cast(amount as decimal(18, 2)) as amount,
    cast(coalesce(unused_amount, '0') as decimal(18, 2)) as unused_amount,
    upper(currency_code) as currency,
    cast(exchange_rate as decimal(18, 6)) as fx_rate,
    reference_number,
    invoice_numbers,
    created_time as created_at,
    last_modified_time as updated_at,
    'zoho_books' as channel
from {{ source('zoho_books', 'customer_payments') }}
