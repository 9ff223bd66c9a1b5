{{ config(enabled=('paypal' in var('channels'))) }}
{#- Refunds of each order's captures. -#}
{%- set units = '[{"payments": {"refunds": [{"id": "VARCHAR", "status": "VARCHAR", "note_to_payer": "VARCHAR", "amount": {"currency_code": "VARCHAR", "value": "VARCHAR"}, "create_time": "VARCHAR"}]}}]' -%}
with refunds as (
    select id as order_id,
        {{ jlist_rows(jlist(jindex(json_parse('purchase_units', units), 1), 'payments.refunds')) }} as r
    from {{ source('paypal', 'orders') }}
)

select
    cast({{ jget('r', 'id') }} as varchar) as refund_id,
    order_id,
    cast({{ jget('r', 'status') }} as varchar) as status,
    cast({{ jget('r', 'note_to_payer') }} as varchar) as note,
    upper({{ jget('r', 'amount.currency_code') }}) as currency,
    cast({{ jget('r', 'amount.value') }} as decimal(18, 2)) as amount,
    cast({{ jget('r', 'create_time') }} as timestamptz) as refunded_at,
    'paypal' as channel
from refunds
