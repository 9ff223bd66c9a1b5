{{ config(enabled=('bigcommerce' in var('channels'))) }}
{#- One row per BigCommerce order.  Money as DECIMAL(18,2) in the order currency; timestamps from
    the V2 RFC 2822 dates (UTC).  BigCommerce addresses name the state; it is turned into its
    two-letter code, the jurisdiction of the sales tax. -#}
{%- set states = {'Alabama': 'AL', 'Alaska': 'AK', 'Arizona': 'AZ', 'Arkansas': 'AR', 'California': 'CA',
    'Colorado': 'CO', 'Connecticut': 'CT', 'Delaware': 'DE', 'District of Columbia': 'DC', 'Florida': 'FL',
    'Georgia': 'GA', 'Hawaii': 'HI', 'Idaho': 'ID', 'Illinois': 'IL', 'Indiana': 'IN', 'Iowa': 'IA',
    'Kansas': 'KS', 'Kentucky': 'KY', 'Louisiana': 'LA', 'Maine': 'ME', 'Maryland': 'MD',
    'Massachusetts': 'MA', 'Michigan': 'MI', 'Minnesota': 'MN', 'Mississippi': 'MS', 'Missouri': 'MO',
    'Montana': 'MT', 'Nebraska': 'NE', 'Nevada': 'NV', 'New Hampshire': 'NH', 'New Jersey': 'NJ',
    'New Mexico': 'NM', 'New York': 'NY', 'North Carolina': 'NC', 'North Dakota': 'ND', 'Ohio': 'OH',
    'Oklahoma': 'OK', 'Oregon': 'OR', 'Pennsylvania': 'PA', 'Rhode Island': 'RI', 'South Carolina': 'SC',
    'South Dakota': 'SD', 'Tennessee': 'TN', 'Texas': 'TX', 'Utah': 'UT', 'Vermont': 'VT', 'Virginia': 'VA',
    'Washington': 'WA', 'West Virginia': 'WV', 'Wisconsin': 'WI', 'Wyoming': 'WY'} -%}

with orders as (
    select
        *,
        upper({{ json_text('billing_address', '$.country_iso2') }}) as ship_country,
        {{ json_text('billing_address', '$.state') }} as state_name
    from {{ source('bigcommerce', 'orders') }}
)

select
    id as order_id,
    cast(id as varchar) as order_number,
    nullif(cast(customer_id as varchar), '0') as customer_id,
    {{ json_text('billing_address', '$.email') }} as customer_email,
    nullif({{ json_text('billing_address', '$.company') }}, '') as customer_company,
    status_id,
    status,
    payment_status,
    payment_status in ('captured', 'partially refunded', 'refunded') as is_paid,
    payment_method,
    upper(currency_code) as currency,
    upper(coalesce(store_default_currency_code, currency_code)) as store_currency,
    cast(coalesce(store_default_to_transactional_exchange_rate, currency_exchange_rate, '1') as decimal(18, 10)) as fx_rate,
    date_created as ordered_at,
    date_modified as updated_at,
    date_shipped as shipped_at,
    ship_country,
    case
        {%- for name, code in states.items() %}
        when state_name = '{{ name }}' then '{{ code }}'
        {%- endfor %}
        else nullif(state_name, '') end as ship_state,
    case when ship_country = 'US' then 'us_sales_tax'
         when ship_country = 'GB' then 'uk_vat'
         else 'export_zero_rated' end as tax_treatment,
    cast(subtotal_ex_tax as decimal(18, 2)) as subtotal_ex_tax,
    cast(subtotal_tax as decimal(18, 2)) as subtotal_tax,
    cast(discount_amount as decimal(18, 2)) as discount_amount,
    cast(shipping_cost_ex_tax as decimal(18, 2)) as shipping_amount,
    cast(shipping_cost_tax as decimal(18, 2)) as shipping_tax,
    cast(total_ex_tax as decimal(18, 2)) as total_ex_tax,
    cast(total_tax as decimal(18, 2)) as total_tax,
    cast(total_inc_tax as decimal(18, 2)) as total,
    cast(refunded_amount as decimal(18, 2)) as refunded_amount,
    nullif(staff_notes, '') as staff_notes,
    coalesce(is_deleted, false) as is_deleted,
    'bigcommerce' as channel
from orders
