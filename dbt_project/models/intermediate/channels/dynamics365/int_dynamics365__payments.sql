{{ config(enabled=('dynamics365' in var('channels'))) }}
{#- Bank transfers recorded in Business Central against its own invoices: straight to the bank
    (processor bank_transfer, no fee, no balance transaction), in the invoice's currency, home
    amount at the company's GBP rate of the posting date (the difference against the invoice's
    own rate is realised FX). -#}
select
    'dynamics365' as channel,
    'bank_transfer' as processor,
    p.payment_id,
    p.invoice_id as order_id,
    'succeeded' as status,
    cast(null as varchar) as failure_code,
    i.currency,
    p.amount,
    cast(p.amount * r.gbp_per_unit as decimal(18, 2)) as amount_home,
    cast(0 as decimal(18, 2)) as fee_home,
    p.paid_at as attempted_at,
    'INV-' || p.invoice_number as invoice_number,
    cast(0 as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    cast(null as varchar) as balance_transaction_id,
    p.external_document_number as transaction_id,
    cast(null as varchar) as dispute_status
from {{ ref('stg_dynamics365__payments') }} as p
join {{ ref('stg_dynamics365__invoices') }} as i using (invoice_id)
{{ asof_left_join(ref('stg_dynamics365__exchange_rates'), 'r', 'p.posting_date >= r.starting_date', 'r.starting_date desc') }}
