{{ config(enabled=('stripe' in var('channels'))) }}
{#- One row per Stripe charge (succeeded or failed). Trade invoices are paid by card: the charge's
    metadata names the invoice and the Shopify order it pays. -#}
select
    id as charge_id,
    {{ minor_to_major('amount', 'currency') }} as amount,
    {{ minor_to_major('amount_refunded', 'currency') }} as amount_refunded,
    upper(currency) as currency,
    status,
    paid,
    refunded,
    disputed,
    failure_code,
    failure_message,
    customer,
    payment_intent,
    balance_transaction as balance_transaction_id,
    cast(created as timestamptz) as created_at,
    {{ json_text('metadata', '$.invoice_number') }} as invoice_number,
    {{ json_text('metadata', '$.order_name') }} as order_number,
    {{ safe_cast(json_text('metadata', '$.order_id'), 'bigint') }} as order_id,
    {{ json_text('payment_method_details', '$.card.country') }} as card_country,
    description,
    'stripe' as channel
from {{ source('stripe', 'charges') }}
