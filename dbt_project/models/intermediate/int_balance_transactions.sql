{#- Every movement of processor balances (charges, refunds, fees, dispute withdrawals and
    reversals, payouts), in the settlement currency, with the payout that carried it. -#}
with shopify as (
    select
        'shopify' as channel,
        cast(balance_transaction_id as varchar) as balance_transaction_id,
        cast(payout_id as varchar) as payout_id,
        type,
        type as category,
        cast(source_order_id as varchar) as order_id,
        cast(source_id as varchar) as source_id,
        currency,
        amount,
        fee,
        net,
        processed_at as occurred_at
    from {{ ref('stg_shopify__balance_transactions') }}
),

stripe as (
    select
        'stripe' as channel,
        bt.balance_transaction_id,
        pbt.payout_id,
        bt.type,
        bt.reporting_category as category,
        cast(null as varchar) as order_id,
        bt.source_id,
        bt.currency,
        bt.amount,
        bt.fee,
        bt.net,
        bt.created_at as occurred_at
    from {{ ref('stg_stripe__balance_transactions') }} as bt
    left join {{ ref('stg_stripe__payout_balance_transactions') }} as pbt using (balance_transaction_id)
)

select * from shopify
union all by name
select * from stripe
