{{ config(enabled=('paypal' in var('channels'))) }}
{#- Captures of each order, with PayPal's fee from the seller receivable breakdown. -#}
{%- set m = '{"currency_code": "VARCHAR", "value": "VARCHAR"}' -%}
with captures as (
    select id as order_id,
        unnest(from_json(purchase_units, '[{"payments": {"captures": [{"id": "VARCHAR", "status": "VARCHAR", "amount": {{ m }}, "create_time": "VARCHAR", "seller_receivable_breakdown": {"gross_amount": {{ m }}, "paypal_fee": {{ m }}, "net_amount": {{ m }}}}]}}]')[1].payments.captures) as c
    from {{ source('paypal', 'orders') }}
)

select
    c.id as capture_id,
    order_id,
    c.status,
    upper(c.amount.currency_code) as currency,
    cast(c.amount.value as decimal(18, 2)) as amount,
    cast(coalesce(c.seller_receivable_breakdown.paypal_fee.value, '0') as decimal(18, 2)) as fee,
    cast(c.seller_receivable_breakdown.net_amount.value as decimal(18, 2)) as net,
    cast(c.create_time as timestamptz) as created_at,
    'paypal' as channel
from captures
