{{ config(enabled=('sage_intacct' in var('channels'))) }}
{#- What each payment paid: one row per payment × AR invoice (`ar_record_key` = the document's PRRECORDKEY). -#}
select
    'sage_intacct' as channel,
    recordno as detail_id,
    paymentkey as payment_id,
    recordkey as ar_record_key,
    cast(trx_paymentamount as decimal(18, 2)) as amount,
    cast(paymentamount as decimal(18, 2)) as amount_home
from {{ source('sage_intacct', 'arpayment_details') }}
