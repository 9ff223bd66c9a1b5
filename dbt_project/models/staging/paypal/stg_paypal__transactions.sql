{{ config(enabled=('paypal' in var('channels'))) }}
{#- The PayPal account's ledger from Transaction Search: one row per (transaction, event code),
    `amount` signed as PayPal reports it, `fee` positive (PayPal reports it negative), `net` what
    the balance moved. -#}
select
    transaction_id,
    transaction_event_code as event_code,
    transaction_status as status,
    transaction_initiation_date as occurred_at,
    transaction_updated_date as updated_at,
    upper({{ json_text('transaction_amount', '$.currency_code') }}) as currency,
    cast({{ json_text('transaction_amount', '$.value') }} as decimal(18, 2)) as amount,
    -cast(coalesce({{ json_text('fee_amount', '$.value') }}, '0') as decimal(18, 2)) as fee,
    cast(cast({{ json_text('transaction_amount', '$.value') }} as decimal(18, 2))
         + cast(coalesce({{ json_text('fee_amount', '$.value') }}, '0') as decimal(18, 2)) as decimal(18, 2)) as net,
    invoice_id,
    paypal_reference_id as reference_id,
    paypal_reference_id_type as reference_type,
    {{ json_text('payer_info', '$.account_id') }} as payer_id,
    'paypal' as channel
from {{ source('paypal', 'transactions') }}
