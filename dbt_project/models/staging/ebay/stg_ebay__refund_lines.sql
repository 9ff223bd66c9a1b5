{{ config(enabled=('ebay' in var('channels'))) }}
{#- One row per (refund, line item) from `lineItems[].refunds`: what the buyer got back for that
    line, tax included, in the buyer's currency and (`_home`) GBP.  A refund's amount less its
    lines is the delivery charge paid back. -#}
{%- set line = '{"lineItemId": "VARCHAR", "refunds": [{"refundId": "VARCHAR", "refundDate": "VARCHAR", "amount": {"value": "VARCHAR", "convertedFromValue": "VARCHAR"}}]}' -%}

with lines as (
    select order_id, {{ json_rows('line_items', '[' ~ line ~ ']') }} as l
    from {{ source('ebay', 'orders') }}
),

refunds as (
    select order_id, cast({{ jget('l', 'lineItemId') }} as varchar) as line_id, {{ jlist_rows(jlist('l', 'refunds')) }} as r
    from lines
)

select
    cast({{ jget('r', 'refundId') }} as varchar) as refund_id,
    order_id,
    line_id,
    cast({{ jget('r', 'refundDate') }} as timestamptz) as refunded_at,
    cast(coalesce({{ jget('r', 'amount.convertedFromValue') }}, {{ jget('r', 'amount.value') }}) as decimal(18, 2)) as amount,
    cast({{ jget('r', 'amount.value') }} as decimal(18, 2)) as amount_home,
    'ebay' as channel
from refunds
