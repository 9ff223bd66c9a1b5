{{ config(enabled=('sage_intacct' in var('channels'))) }}
{#- Customer payments (ARPYMT): amount in the payment currency and in GBP at the payment's own rate. -#}
select
    'sage_intacct' as channel,
    recordno as payment_id,
    customerid as customer_id,
    paymentmethod as payment_method,
    docnumber as reference,
    receiptdate as paid_on,
    auwhencreated as paid_at,
    whenmodified as updated_at,
    upper(currency) as currency,
    cast(exchange_rate as decimal(18, 6)) as exchange_rate,
    cast(trx_totalpaid as decimal(18, 2)) as amount,
    cast(totalpaid as decimal(18, 2)) as amount_home,
    state
from {{ source('sage_intacct', 'arpayments') }}
