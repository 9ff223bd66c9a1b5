{{ config(enabled=('paypal' in var('channels'))) }}
{#- Refunds of each order's captures. -#}
with refunds as (
    select id as order_id,
        unnest(from_json(purchase_units, '[{"payments": {"refunds": [{"id": "VARCHAR", "status": "VARCHAR", "note_to_payer": "VARCHAR", "amount": {"currency_code": "VARCHAR", "value": "VARCHAR"}, "create_time": "VARCHAR"}]}}]')[1].payments.refunds) as r
    from {{ source('paypal', 'orders') }}
)

select
    r.id as refund_id,
    order_id,
    r.status,
    r.note_to_payer as note,
    upper(r.amount.currency_code) as currency,
    cast(r.amount.value as decimal(18, 2)) as amount,
    cast(r.create_time as timestamptz) as refunded_at,
    'paypal' as channel
from refunds
