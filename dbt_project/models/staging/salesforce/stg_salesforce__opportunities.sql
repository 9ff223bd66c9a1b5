{{ config(enabled=('salesforce' in var('sources', ['salesforce']))) }}
{#- One row per Salesforce Opportunity (queryAll: deleted rows kept, flagged). -#}
select
    id as deal_id,
    name as deal_name,
    cast(amount as decimal(18, 2)) as amount,
    upper(currency_iso_code) as currency,
    stage_name as stage,
    cast(probability as decimal(5, 2)) as probability,
    coalesce(is_won, false) as is_won,
    coalesce(is_closed, false) as is_closed,
    cast(close_date as date) as close_date,
    cast(created_date as timestamptz) as created_at,
    cast(system_modstamp as timestamptz) as updated_at,
    cast(last_modified_date as timestamptz) as last_modified_at,
    owner_id,
    account_id,
    trade_customer_id__c as customer_id,
    account_name__c as customer_name,
    nullif(invoice_number__c, '') as invoice_number,
    coalesce(is_deleted, false) as is_deleted,
    'salesforce' as channel
from {{ source('salesforce', 'opportunities') }}
