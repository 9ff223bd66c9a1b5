{{ config(enabled=('amazon' in var('channels', {}))) }}
{#- One row per settlement period (financial event group).  original_total is in the marketplace
    currency (the running balance while Open); converted_total what reached the bank, in its currency. -#}
select
    group_id,
    processing_status,
    fund_transfer_status,
    cast(original_total as decimal(18, 2)) as original_total,
    upper(original_currency) as currency,
    cast(converted_total as decimal(18, 2)) as converted_total,
    upper(converted_currency) as converted_currency,
    cast(beginning_balance as decimal(18, 2)) as beginning_balance,
    cast(fund_transfer_date as timestamptz) as fund_transfer_at,
    cast(started_at as timestamptz) as started_at,
    cast(ended_at as timestamptz) as ended_at,
    trace_id,
    account_tail,
    'amazon' as channel
from {{ source('amazon', 'financial_event_groups') }}
