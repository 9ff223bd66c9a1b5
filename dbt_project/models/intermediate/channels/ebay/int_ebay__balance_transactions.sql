{{ config(enabled=('ebay' in var('channels'))) }}
{#- The eBay Finances ledger as balance movements: sales (type 'charge', gross of the final value
    fee), refunds (the seller's part; eBay refunds its collected tax itself), non-sale charges
    such as the shop subscription (type 'fee': all fee, no amount) and anything else as an
    adjustment, with the payout that carried each. -#}
select
    'ebay' as channel,
    transaction_id as balance_transaction_id,
    payout_id,
    case transaction_type when 'SALE' then 'charge' when 'REFUND' then 'refund'
                          when 'NON_SALE_CHARGE' then 'fee' else 'adjustment' end as type,
    lower(transaction_type) as category,
    order_id,
    transaction_id as source_id,
    currency,
    gross as amount,
    fee,
    net,
    occurred_at
from {{ ref('stg_ebay__transactions') }}
