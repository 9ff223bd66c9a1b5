{{ config(enabled=('paypal' in var('channels'))) }}
{#- Captures of each order, with PayPal's fee from the seller receivable breakdown. -#}
{%- set m = '{"currency_code": "VARCHAR", "value": "VARCHAR"}' -%}
{%- set units = '[{"payments": {"captures": [{"id": "VARCHAR", "status": "VARCHAR", "amount": ' ~ m ~ ', "create_time": "VARCHAR", "seller_receivable_breakdown": {"gross_amount": ' ~ m ~ ', "paypal_fee": ' ~ m ~ ', "net_amount": ' ~ m ~ '}}]}}]' -%}
with captures as (
    select id as order_id,
        {{ jlist_rows(jlist(jindex(json_parse('purchase_units', units), 1), 'payments.captures')) }} as c
    from {{ source('paypal', 'orders') }}
)

select
    cast({{ jget('c', 'id') }} as varchar) as capture_id,
    order_id,
    cast({{ jget('c', 'status') }} as varchar) as status,
    upper({{ jget('c', 'amount.currency_code') }}) as currency,
    cast({{ jget('c', 'amount.value') }} as decimal(18, 2)) as amount,
    cast(coalesce({{ jget('c', 'seller_receivable_breakdown.paypal_fee.value') }}, '0') as decimal(18, 2)) as fee,
    cast({{ jget('c', 'seller_receivable_breakdown.net_amount.value') }} as decimal(18, 2)) as net,
    cast({{ jget('c', 'create_time') }} as timestamptz) as created_at,
    'paypal' as channel
from captures
