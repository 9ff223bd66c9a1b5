{{ config(enabled=('lightspeed' in var('channels'))) }}
{#- One row per sale payment (tender): its payment type, and the amount (negative on returns). -#}
select
    p ->> 'salePaymentID' as sale_payment_id,
    s.id as sale_id,
    p ->> 'paymentTypeID' as payment_type_id,
    p -> 'PaymentType' ->> 'name' as payment_type_name,
    lower(p -> 'PaymentType' ->> 'type') as payment_type,
    cast(p ->> 'amount' as decimal(18, 2)) as amount,
    coalesce(p ->> 'archived', 'false') = 'true' as archived,
    cast(p ->> 'createTime' as timestamptz) as created_at,
    'lightspeed' as channel
from {{ source('lightspeed', 'sales') }} as s,
    {{ json_elements('s.sale_payments') }} as t(p)
where s.sale_payments is not null
