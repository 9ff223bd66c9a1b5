{{ config(enabled=('bigcommerce' in var('channels'))) }}
{#- One row per gateway transaction of an order (V3): event purchase | authorization | capture |
    refund | void | pending | settled, status ok | error; amount as the JSON number's exact text. -#}
select
    id as transaction_id,
    order_id,
    event,
    method,
    gateway,
    gateway_transaction_id,
    payment_method_id,
    cast(amount as decimal(18, 2)) as amount,
    upper(currency) as currency,
    status,
    test,
    date_created as created_at,
    {{ json_text('credit_card', '$.card_type') }} as card_type,
    'bigcommerce' as channel
from {{ source('bigcommerce', 'transactions') }}
