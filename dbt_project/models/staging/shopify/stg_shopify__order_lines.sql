{{ config(enabled=('shopify' in var('channels'))) }}
{#- One row per order line item (lines added by an order edit included, once the edit happened).
    `price` is the unit price; `discount` the line's total discount (its discount allocations);
    `tax` the sum of its tax lines and `tax_rate` the sum of their rates (a US line can carry
    state, county and city tax).  Presentment currency, with `_shop` shop money (GBP).
    `is_gift_card`: the line sells a gift card (Shopify's `gift_card`; no tax, not shipped). -#}
{%- set bag = '{"shop_money": {"amount": "VARCHAR"}, "presentment_money": {"amount": "VARCHAR"}}' -%}
{%- set line_shape = '[{"id": "BIGINT", "sku": "VARCHAR", "title": "VARCHAR", "variant_title": "VARCHAR",
    "quantity": "BIGINT", "current_quantity": "BIGINT", "gift_card": "BOOLEAN", "price_set": ' ~ bag ~ ',
    "discount_allocations": [{"amount_set": ' ~ bag ~ '}],
    "tax_lines": [{"rate": "VARCHAR", "price_set": ' ~ bag ~ '}]}]' -%}

with lines as (
    select
        id as order_id,
        upper(presentment_currency) as currency,
        {{ json_rows('line_items', line_shape) }} as li
    from {{ source('shopify', 'orders') }}
)

select
    order_id,
    cast({{ jget('li', 'id') }} as bigint) as line_id,
    cast({{ jget('li', 'sku') }} as varchar) as sku,
    cast({{ jget('li', 'title') }} as varchar) as title,
    cast({{ jget('li', 'variant_title') }} as varchar) as variant_title,
    cast({{ jget('li', 'quantity') }} as bigint) as quantity,
    cast({{ jget('li', 'current_quantity') }} as bigint) as current_quantity,
    coalesce(cast({{ jget('li', 'gift_card') }} as boolean), false) as is_gift_card,
    currency,
    cast({{ jget('li', 'price_set.presentment_money.amount') }} as decimal(18, 2)) as price,
    cast({{ jget('li', 'price_set.shop_money.amount') }} as decimal(18, 2)) as price_shop,
    cast(coalesce({{ jsum(jlist('li', 'discount_allocations'), 'amount_set.presentment_money.amount', 'decimal(18, 2)') }}, 0) as decimal(18, 2)) as discount,
    cast(coalesce({{ jsum(jlist('li', 'discount_allocations'), 'amount_set.shop_money.amount', 'decimal(18, 2)') }}, 0) as decimal(18, 2)) as discount_shop,
    cast(coalesce({{ jsum(jlist('li', 'tax_lines'), 'price_set.presentment_money.amount', 'decimal(18, 2)') }}, 0) as decimal(18, 2)) as tax,
    cast(coalesce({{ jsum(jlist('li', 'tax_lines'), 'price_set.shop_money.amount', 'decimal(18, 2)') }}, 0) as decimal(18, 2)) as tax_shop,
    cast(coalesce({{ jsum(jlist('li', 'tax_lines'), 'rate', 'decimal(12, 6)') }}, 0) as decimal(12, 6)) as tax_rate,
    'shopify' as channel
from lines
