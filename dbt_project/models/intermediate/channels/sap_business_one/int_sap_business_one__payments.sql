{{ config(enabled=('sap_business_one' in var('channels'))) }}
{#- Customer bank transfers the bookkeeper recorded in B1 against the desk's invoices: succeeded,
    in the invoice's currency, GBP at the payment day's rate (B1's SumApplied), no fee and no
    processor balance (the GL posts Dr bank / Cr receivables). -#}
select
    'sap_business_one' as channel,
    'bank_transfer' as processor,
    p.payment_id,
    cast(p.invoice_id as varchar) as order_id,
    'succeeded' as status,
    cast(null as varchar) as failure_code,
    p.currency,
    p.amount,
    p.amount_home,
    cast(0 as decimal(18, 2)) as fee_home,
    p.paid_at as attempted_at,
    'INV-' || i.invoice_number as invoice_number,
    cast(0 as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    cast(null as varchar) as balance_transaction_id,
    p.transfer_reference as transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_sap_business_one__payments') }} as p
join {{ ref('stg_sap_business_one__invoices') }} as i using (invoice_id)
