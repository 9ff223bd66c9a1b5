{{ config(enabled=('ebay' in var('channels'))) }}
{#- One row per refund to the buyer (`paymentSummary.refunds`): the whole amount the buyer got
    back (including tax eBay had collected), in the buyer's currency and (`_home`) GBP. -#}
{%- set refund = '{"refundId": "VARCHAR", "refundDate": "VARCHAR", "refundStatus": "VARCHAR", "refundReferenceId": "VARCHAR", "amount": {"value": "VARCHAR", "convertedFromValue": "VARCHAR"}}' -%}

with refunds as (
    select order_id, {{ jlist_rows(jlist(json_parse('payment_summary', '{"refunds": [' ~ refund ~ ']}'), 'refunds')) }} as r
    from {{ source('ebay', 'orders') }}
)

select
    cast({{ jget('r', 'refundId') }} as varchar) as refund_id,
    order_id,
    cast({{ jget('r', 'refundDate') }} as timestamptz) as refunded_at,
    cast({{ jget('r', 'refundStatus') }} as varchar) as refund_status,
    cast({{ jget('r', 'refundReferenceId') }} as varchar) as refund_reference_id,
    cast(coalesce({{ jget('r', 'amount.convertedFromValue') }}, {{ jget('r', 'amount.value') }}) as decimal(18, 2)) as amount,
    cast({{ jget('r', 'amount.value') }} as decimal(18, 2)) as amount_home,
    'ebay' as channel
from refunds
