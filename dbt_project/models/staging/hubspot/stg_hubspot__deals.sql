{{ config(enabled=('hubspot' in var('sources', ['hubspot']))) }}
{#- One row per HubSpot deal.  HubSpot property values are strings; closedate is midnight UTC of
    the close date. -#}
select
    id as deal_id,
    dealname as deal_name,
    cast(nullif(amount, '') as decimal(18, 2)) as amount,
    upper(deal_currency_code) as currency,
    dealstage as stage,
    pipeline,
    coalesce(hs_is_closed_won = 'true', false) as is_won,
    coalesce(hs_is_closed = 'true', false) as is_closed,
    cast(substr(closedate, 1, 10) as date) as close_date,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at,
    hubspot_owner_id as owner_id,
    trade_customer_id as customer_id,
    trade_company as customer_name,
    nullif(invoice_number, '') as invoice_number,
    coalesce(archived, false) as is_deleted,
    'hubspot' as channel
from {{ source('hubspot', 'deals') }}
