{{ config(enabled=('square' in var('channels'))) }}
{#- One row per payout entry: gross, fee and net of each movement a payout carried
    (CHARGE: fee positive; REFUND: gross and net negative). -#}
{%- set ccy = "coalesce(gross_amount_money::json ->> 'currency', gross_amount_money::json ->> 'currency_code')" %}
select
    id as entry_id,
    payout_id,
    type as entry_type,
    cast(effective_at as timestamptz) as effective_at,
    upper({{ ccy }}) as currency,
    {{ minor_to_major("(gross_amount_money::json ->> 'amount')::bigint", ccy) }} as gross_amount,
    {{ minor_to_major("(fee_amount_money::json ->> 'amount')::bigint", ccy) }} as fee_amount,
    {{ minor_to_major("(net_amount_money::json ->> 'amount')::bigint", ccy) }} as net_amount,
    coalesce(type_charge_details::json ->> 'payment_id', type_refund_details::json ->> 'payment_id') as payment_id,
    type_refund_details::json ->> 'refund_id' as refund_id,
    'square' as channel
from {{ source('square', 'payout_entries') }}
