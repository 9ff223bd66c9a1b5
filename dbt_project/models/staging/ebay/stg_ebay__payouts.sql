{{ config(enabled=('ebay' in var('channels'))) }}
{#- eBay payouts of the seller's funds to the bank. -#}
select
    payout_id,
    payout_status,
    payout_date as payout_at,
    cast({{ json_text('amount', '$.value') }} as decimal(18, 2)) as amount,
    upper({{ json_text('amount', '$.currency') }}) as currency,
    transaction_count,
    bank_reference,
    'ebay' as channel
from {{ source('ebay', 'payouts') }}
