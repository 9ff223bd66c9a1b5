{{ config(enabled=('sage_intacct' in var('channels'))) }}
{#- Bank transfers recorded against the division's invoices (ARPYMT × ARPYMTDETAIL → the document
    whose PRRECORDKEY is the paid AR invoice): the GL posts them straight to the bank; `amount_home`
    is Intacct's base amount at the payment day's rate, so against the invoice's rate it realises FX. -#}
select
    'sage_intacct' as channel,
    'bank_transfer' as processor,
    cast(p.payment_id as varchar) || '-' || cast(x.detail_id as varchar) as payment_id,
    cast(d.record_no as varchar) as order_id,
    case when p.state = 'V' then 'voided' else 'succeeded' end as status,
    cast(null as varchar) as failure_code,
    p.currency,
    x.amount,
    x.amount_home,
    cast(0 as decimal(18, 2)) as fee_home,
    p.paid_at as attempted_at,
    'INV-' || d.document_number as invoice_number,
    cast(0 as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    cast(null as varchar) as balance_transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_sage_intacct__payment_details') }} as x
join {{ ref('stg_sage_intacct__payments') }} as p using (payment_id)
join {{ ref('stg_sage_intacct__documents') }} as d using (ar_record_key)
