{{ config(enabled=('dynamics365' in var('channels'))) }}
{#- Bank transfers recorded in Business Central against its own invoices: straight to the bank
    (processor bank_transfer, no fee, no balance transaction), in the invoice's currency, home
    amount at the company's GBP rate of the posting date (the difference against the invoice's
    own rate is realised FX). -#}
select
    {{ bank_payment_columns('dynamics365',
        payment_id='p.payment_id', order_id='p.invoice_id', currency='i.currency', amount='p.amount',
        amount_home='cast(p.amount * r.gbp_per_unit as decimal(18, 2))', attempted_at='p.paid_at',
        invoice_number='p.invoice_number', transaction_id='p.external_document_number') }}
from {{ ref('stg_dynamics365__payments') }} as p
join {{ ref('stg_dynamics365__invoices') }} as i using (invoice_id)
{{ asof_left_join(ref('stg_dynamics365__exchange_rates'), 'r', 'p.posting_date >= r.starting_date', 'r.starting_date desc') }}
