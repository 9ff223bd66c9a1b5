{{ config(enabled=('freshbooks' in var('channels'))) }}
select
    id as client_id,
    nullif(trim(note), '') as customer_number,
    nullif(organization, '') as organization,
    nullif(fname, '') as first_name,
    nullif(lname, '') as last_name,
    nullif(email, '') as email,
    upper(nullif(p_country, '')) as country,
    upper(currency_code) as currency,
    nullif(vat_number, '') as vat_number,
    updated_at,
    vis_state,
    'freshbooks' as channel
from {{ source('freshbooks', 'clients') }}
