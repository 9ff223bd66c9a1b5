{{ config(enabled=('square' in var('channels'))) }}
{#- Every Square payment attempt.  Card payments are processed by Square (fee once computed);
    cash goes to the till and is banked by deposit: processor 'cash', no fee, no payout.
    A card authorisation voided before capture (CANCELED) is a failed attempt (failure_code VOIDED). -#}
select
    'square' as channel,
    case when p.source_type = 'CASH' then 'cash' else 'square' end as processor,
    p.payment_id,
    p.order_id,
    case p.status when 'COMPLETED' then 'succeeded' when 'FAILED' then 'failed' when 'CANCELED' then 'failed'
                  else 'pending' end as status,
    case when p.status = 'CANCELED' then 'VOIDED' else p.failure_code end as failure_code,
    p.currency,
    p.amount,
    case when p.status = 'COMPLETED' then p.amount end as amount_home,
    case when p.status = 'COMPLETED' then p.processing_fee end as fee_home,
    p.created_at as attempted_at,
    cast(null as varchar) as invoice_number,
    p.refunded_amount,
    false as is_disputed,
    case when p.status = 'COMPLETED' and p.source_type <> 'CASH' then p.payment_id end as balance_transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_square__payments') }} as p
