{{ config(enabled=('zoho_books' in var('channels'))) }}
select
    contact_id,
    contact_number as customer_number,
    contact_name,
    company_name,
    email,
    upper(currency_code) as currency,
    vat_reg_no,
    cast(payment_terms as integer) as terms_days,
    upper({{ json_text('billing_address', '$.country') }}) as country,
    status,
    created_time as created_at,
    last_modified_time as updated_at,
    'zoho_books' as channel
from {{ source('zoho_books', 'contacts') }}
