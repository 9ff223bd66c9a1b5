{#- Each payout against the balance transactions behind it (scenario R1):
    payout amount = charges + refunds + adjustments - fees = the transactions' net.
    A difference, or a payout with no transactions, is a break with its reason spelled out. -#}
with txns as (
    select
        channel,
        payout_id,
        cast(sum(case when type = 'charge' then amount else 0 end) as decimal(18, 2)) as charges_gross,
        cast(sum(case when type = 'refund' then amount else 0 end) as decimal(18, 2)) as refunds_gross,
        cast(sum(case when type not in ('charge', 'refund') then amount else 0 end) as decimal(18, 2)) as adjustments,
        cast(sum(fee) as decimal(18, 2)) as fees,
        cast(sum(net) as decimal(18, 2)) as transactions_net,
        count(*) as transaction_count,
        count(distinct order_id) as order_count
    from {{ ref('int_balance_transactions') }}
    where payout_id is not null and type <> 'payout'
    group by channel, payout_id
)

select
    p.channel,
    p.payout_id,
    p.payout_date,
    p.status,
    p.currency,
    p.amount as payout_amount,
    coalesce(t.charges_gross, 0) as charges_gross,
    coalesce(t.refunds_gross, 0) as refunds_gross,
    coalesce(t.adjustments, 0) as adjustments,
    coalesce(t.fees, 0) as fees,
    coalesce(t.transactions_net, 0) as transactions_net,
    cast(p.amount - coalesce(t.transactions_net, 0) as decimal(18, 2)) as variance,
    coalesce(t.transaction_count, 0) as transaction_count,
    coalesce(t.order_count, 0) as order_count,
    case when p.amount = coalesce(t.transactions_net, 0) and coalesce(t.transaction_count, 0) > 0
         then 'matched' else 'break' end as reconciliation_status,
    case
        when coalesce(t.transaction_count, 0) = 0 then 'no balance transactions found for this payout'
        when p.amount <> t.transactions_net
            then 'payout differs from its transactions by ' || cast(p.amount - t.transactions_net as varchar)
    end as break_reason
from {{ ref('int_payouts') }} as p
left join txns as t using (channel, payout_id)
