{{ config(enabled=('shopify' in var('channels'))) }}
{#- One row per Shopify Payments payout to the bank (GBP).  A payout can be negative when a
    day's refunds exceed its sales (a debit from the bank, scenario P5). -#}
{%- set money = ['charges_gross_amount', 'charges_fee_amount', 'refunds_gross_amount', 'refunds_fee_amount',
                 'adjustments_gross_amount', 'adjustments_fee_amount',
                 'reserved_funds_gross_amount', 'reserved_funds_fee_amount'] -%}

select
    id as payout_id,
    cast(date as date) as payout_date,
    lower(status) as status,
    upper(currency) as currency,
    cast(amount as decimal(18, 2)) as amount,
    {%- for m in money %}
    cast(coalesce({{ json_text('summary', '$.' ~ m) }}, '0') as decimal(18, 2)) as {{ m }},
    {%- endfor %}
    'shopify' as channel
from {{ source('shopify', 'payouts') }}
