{{ config(enabled=('dynamics365' in var('channels'))) }}
{#- One row per posted sales invoice of the US company.  `ordered_at` is the invoice date at
    midnight UTC (BC keeps dates, not times); the tax treatment comes from the lines' tax groups
    (TAXABLE: state sales tax; otherwise a resale certificate is on file). -#}
select
    id as invoice_id,
    number as invoice_number,
    customer_number,
    customer_name,
    nullif(email, '') as customer_email,
    upper(coalesce(nullif(sell_to_country, ''), 'US')) as country,
    nullif(sell_to_state, '') as region,
    upper(currency_code) as currency,
    cast(invoice_date as date) as invoice_date,
    cast(due_date as date) as due_date,
    cast(due_date as date) - cast(invoice_date as date) as terms_days,
    cast(invoice_date || ' 00:00:00+00' as timestamptz) as ordered_at,
    status,
    status = 'Canceled' as is_cancelled,
    customer_purchase_order_reference,
    case when {{ json_array_has('sales_invoice_lines', 'taxCode', 'TAXABLE') }}
         then 'us_sales_tax' else 'us_resale_exempt' end as tax_treatment,
    cast(total_amount_excluding_tax as decimal(18, 2)) as total_ex_tax,
    cast(total_tax_amount as decimal(18, 2)) as total_tax,
    cast(total_amount_including_tax as decimal(18, 2)) as total_amount,
    cast(remaining_amount as decimal(18, 2)) as remaining_amount,
    last_modified_date_time as updated_at,
    'dynamics365' as channel
from {{ source('dynamics365', 'sales_invoices') }}
