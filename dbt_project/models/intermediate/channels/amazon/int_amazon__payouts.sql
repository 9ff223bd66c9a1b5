{{ config(enabled=('amazon' in var('channels', {}))) }}
{#- One Amazon payout per closed settlement (financial event group): the disbursement of its
    OriginalTotal in the marketplace currency, converted by Amazon to the bank's currency
    (amount_home = ConvertedTotal; the difference to the home amounts of its transactions is
    realised FX).  Paid once the fund transfer succeeded, dated by the transfer (UTC). -#}
select
    'amazon' as channel,
    group_id as payout_id,
    cast(null as varchar) as balance_transaction_id,
    currency,
    original_total as amount,
    case when fund_transfer_status = 'Succeeded' then 'paid'
         when fund_transfer_status = 'Failed' then 'failed'
         else 'in_transit' end as status,
    cast(timezone('UTC', fund_transfer_at) as date) as payout_date,
    ended_at as created_at,
    converted_total as amount_home,
    converted_currency as home_currency,
    started_at as period_start,
    ended_at as period_end,
    trace_id
from {{ ref('stg_amazon__financial_event_groups') }}
where processing_status = 'Closed'
