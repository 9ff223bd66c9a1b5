{{ config(enabled=('shopify' in var('channels'))) }}
{#- Order transactions of the orders paid (in part) outside Shopify Payments — today gift card
    tenders (gateway `gift_card`, the card's id and last characters in the receipt).  Card payments
    come from the balance transactions instead.  Amounts in the presentment currency.  The raw table
    appears with the first such order; until then this is an empty relation of the same shape. -#}
{%- set raw = source('shopify', 'order_transactions') -%}
{%- set exists = execute and adapter.get_relation(database=raw.database, schema=raw.schema, identifier=raw.identifier) is not none -%}
{%- if exists %}
select
    id as transaction_id,
    order_id,
    lower(kind) as kind,
    gateway,
    lower(status) as status,
    upper(currency) as currency,
    cast(amount as decimal(18, 2)) as amount,
    created_at,
    processed_at,
    parent_id,
    cast({{ json_text('receipt', '$.gift_card_id') }} as bigint) as gift_card_id,
    {{ json_text('receipt', '$.gift_card_last_characters') }} as gift_card_last_characters,
    'shopify' as channel
from {{ raw }}
{%- else %}
select
    cast(null as bigint) as transaction_id, cast(null as bigint) as order_id, cast(null as varchar) as kind,
    cast(null as varchar) as gateway, cast(null as varchar) as status, cast(null as varchar) as currency,
    cast(null as decimal(18, 2)) as amount, cast(null as timestamptz) as created_at,
    cast(null as timestamptz) as processed_at, cast(null as bigint) as parent_id,
    cast(null as bigint) as gift_card_id, cast(null as varchar) as gift_card_last_characters,
    'shopify' as channel
where false
{%- endif %}
