{{ config(enabled=('ebay' in var('channels'))) }}
{#- One row per refund to the buyer (`paymentSummary.refunds`): the whole amount the buyer got
    back (including tax eBay had collected), in the buyer's currency and (`_home`) GBP. -#}
{%- set refund = '{"refundId": "VARCHAR", "refundDate": "VARCHAR", "refundStatus": "VARCHAR", "refundReferenceId": "VARCHAR", "amount": {"value": "VARCHAR", "convertedFromValue": "VARCHAR"}}' -%}

with refunds as (
    select order_id, unnest(from_json(payment_summary, '{"refunds": [{{ refund }}]}').refunds) as r
    from {{ source('ebay', 'orders') }}
)

select
    r.refundId as refund_id,
    order_id,
    cast(r.refundDate as timestamptz) as refunded_at,
    r.refundStatus as refund_status,
    r.refundReferenceId as refund_reference_id,
    cast(coalesce(r.amount.convertedFromValue, r.amount.value) as decimal(18, 2)) as amount,
    cast(r.amount.value as decimal(18, 2)) as amount_home,
    'ebay' as channel
from refunds
