{{ config(enabled=('ebay' in var('channels'))) }}
{#- eBay payouts of the seller's funds to the bank, dated by the business day they started.
    Statuses in the shared vocabulary: SUCCEEDED 'paid', INITIATED / RETRYABLE_FAILED 'in_transit',
    TERMINAL_FAILED 'failed', REVERSED 'reversed'. -#}
select
    'ebay' as channel,
    payout_id,
    cast(null as varchar) as balance_transaction_id,
    currency,
    amount,
    case payout_status when 'SUCCEEDED' then 'paid' when 'INITIATED' then 'in_transit'
                       when 'RETRYABLE_FAILED' then 'in_transit' when 'TERMINAL_FAILED' then 'failed'
                       else lower(payout_status) end as status,
    {{ business_date('payout_at') }} as payout_date,
    payout_at as created_at
from {{ ref('stg_ebay__payouts') }}
