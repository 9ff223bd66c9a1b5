{{ config(enabled=('square' in var('channels'))) }}
{#- Every movement of the Square balance: card payments (gross, Square's fee, net) and card
    refunds, dated when they happened, with the payout whose entries carried them; plus any
    payout entry that is neither (fees, adjustments, holds), so each payout can be tied out. -#}
with entries as (
    select * from {{ ref('stg_square__payout_entries') }}
),

charges as (
    select
        p.payment_id as balance_transaction_id,
        e.payout_id,
        'charge' as type,
        'charge' as category,
        p.order_id,
        p.payment_id as source_id,
        p.payment_id,
        p.currency,
        p.amount,
        p.processing_fee as fee,
        p.amount - p.processing_fee as net,
        p.created_at as occurred_at
    from {{ ref('stg_square__payments') }} as p
    left join entries as e on e.entry_type = 'CHARGE' and e.payment_id = p.payment_id
    where p.status = 'COMPLETED' and p.source_type <> 'CASH'
),

refunds as (
    select
        r.refund_id as balance_transaction_id,
        e.payout_id,
        'refund' as type,
        'refund' as category,
        p.order_id,
        r.refund_id as source_id,
        r.payment_id,
        r.currency,
        -r.amount as amount,
        cast(0 as decimal(18, 2)) as fee,
        -r.amount as net,
        r.created_at as occurred_at
    from {{ ref('stg_square__refunds') }} as r
    join {{ ref('stg_square__payments') }} as p using (payment_id)
    left join entries as e on e.entry_type = 'REFUND' and e.refund_id = r.refund_id
    where r.status in ('COMPLETED', 'PENDING') and p.source_type <> 'CASH'
),

other_entries as (
    select
        e.entry_id as balance_transaction_id,
        e.payout_id,
        lower(e.entry_type) as type,
        lower(e.entry_type) as category,
        cast(null as varchar) as order_id,
        e.entry_id as source_id,
        e.payment_id,
        e.currency,
        e.gross_amount as amount,
        e.fee_amount as fee,
        e.net_amount as net,
        e.effective_at as occurred_at
    from entries as e
    where e.entry_type not in ('CHARGE', 'REFUND')
)

{%- set cols = 'balance_transaction_id, payout_id, type, category, order_id, source_id, payment_id, currency, amount, fee, net, occurred_at' %}

select 'square' as channel, {{ cols }} from charges
union all
select 'square' as channel, {{ cols }} from refunds
union all
select 'square' as channel, {{ cols }} from other_entries
