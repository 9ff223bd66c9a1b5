{{ config(enabled=('dynamics365' in var('channels'))) }}
{#- One row per Business Central customer. -#}
select
    id as customer_guid,
    number as customer_number,
    display_name,
    nullif(email, '') as email,
    country,
    nullif(state, '') as region,
    upper(currency_code) as currency,
    tax_liable,
    nullif(tax_registration_number, '') as resale_certificate,
    last_modified_date_time as updated_at,
    'dynamics365' as channel
from {{ source('dynamics365', 'customers') }}
