{{ config(enabled=('freshbooks' in var('channels'))) }}
{#- FreshBooks invoices raised by the bookkeeper (not the ones the pipeline published there).
    The sterling rate of a foreign-currency invoice is the one its notes state
    ("Sterling rate 0.857210 GBP/EUR (…)"). -#}
select
    id as invoice_id,
    invoice_number,
    'FB-' || invoice_number as order_number,
    customerid as client_id,
    nullif(organization, '') as organization,
    upper(nullif(country, '')) as country,
    upper(currency_code) as currency,
    cast(create_date as date) as issued_on,
    cast(due_date as date) as due_on,
    cast(due_offset_days as integer) as terms_days,
    created_at,
    updated_at,
    vis_state,
    vis_state = 1 as is_deleted,
    v3_status,
    payment_status,
    cast(amount as decimal(18, 2)) as total,
    cast(outstanding as decimal(18, 2)) as outstanding,
    cast(paid as decimal(18, 2)) as paid,
    notes,
    case when upper(currency_code) = 'GBP' then cast(1 as decimal(18, 6))
         else cast(nullif({{ regex_extract('notes', 'Sterling rate ([0-9.]+) GBP/', 1) }}, '') as decimal(18, 6)) end as fx_rate,
    lines,
    'freshbooks' as channel
from {{ source('freshbooks', 'invoices') }}
where not (invoice_number like 'INV-%')
