{{ config(enabled=('sap_business_one' in var('channels'))) }}
{#- Customer bank transfers the bookkeeper recorded in B1 against the desk's invoices: succeeded,
    in the invoice's currency, GBP at the payment day's rate (B1's SumApplied), no fee and no
    processor balance (the GL posts Dr bank / Cr receivables). -#}
select
    {{ bank_payment_columns('sap_business_one',
        payment_id='p.payment_id', order_id='cast(p.invoice_id as varchar)', currency='p.currency', amount='p.amount',
        amount_home='p.amount_home', attempted_at='p.paid_at', invoice_number='i.invoice_number',
        transaction_id='p.transfer_reference') }}
from {{ ref('stg_sap_business_one__payments') }} as p
join {{ ref('stg_sap_business_one__invoices') }} as i using (invoice_id)
