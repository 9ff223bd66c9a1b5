{{ config(enabled=('quickbooks' in var('channels'))) }}
{#- One row per QuickBooks payment received (ReceivePayment), in the customer's currency;
    `exchange_rate` is the payment's own (home currency per unit). -#}
select
    id as payment_id,
    customer_id,
    customer_name,
    upper(currency) as currency,
    cast(coalesce(exchange_rate, '1') as decimal(18, 6)) as exchange_rate,
    cast(txn_date as date) as paid_on,
    cast(total_amt as decimal(18, 2)) as total_amount,
    cast(coalesce(unapplied_amt, '0') as decimal(18, 2)) as unapplied_amount,
    payment_ref_num,
    private_note,
    deposit_account_id,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at,
    'quickbooks' as channel
from {{ source('quickbooks', 'payments') }}
where not coalesce(deleted, false)
