{{ config(enabled=('stripe' in var('channels'))) }}
{#- Which balance transactions each payout carried: one row per transaction listed by
    GET /v1/balance_transactions?payout=…, the payout's own (negative) transaction included. -#}
select
    payout_id,
    balance_transaction_id,
    'stripe' as channel
from {{ source('stripe', 'payout_balance_transactions') }}
