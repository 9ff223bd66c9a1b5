{{ config(enabled=('shopify' in var('channels'))) }}
{#- One row per order line item (lines added by an order edit included, once the edit happened).
    `price` is the unit price; `discount` the line's total discount (its discount allocations);
    `tax` the sum of its tax lines and `tax_rate` the sum of their rates (a US line can carry
    state, county and city tax).  Presentment currency, with `_shop` shop money (GBP). -#}
{%- set bag = '{"shop_money": {"amount": "VARCHAR"}, "presentment_money": {"amount": "VARCHAR"}}' -%}
{%- set line_shape = '[{"id": "BIGINT", "sku": "VARCHAR", "title": "VARCHAR", "variant_title": "VARCHAR",
    "quantity": "BIGINT", "current_quantity": "BIGINT", "price_set": ' ~ bag ~ ',
    "discount_allocations": [{"amount_set": ' ~ bag ~ '}],
    "tax_lines": [{"rate": "VARCHAR", "price_set": ' ~ bag ~ '}]}]' -%}

with lines as (
    select
        id as order_id,
        upper(presentment_currency) as currency,
        unnest(from_json(line_items, '{{ line_shape }}')) as li
    from {{ source('shopify', 'orders') }}
)

select
    order_id,
    li.id as line_id,
    li.sku,
    li.title,
    li.variant_title,
    li.quantity,
    li.current_quantity,
    currency,
    cast(li.price_set.presentment_money.amount as decimal(18, 2)) as price,
    cast(li.price_set.shop_money.amount as decimal(18, 2)) as price_shop,
    cast(coalesce(list_sum([cast(d.amount_set.presentment_money.amount as decimal(18, 2))
                            for d in li.discount_allocations]), 0) as decimal(18, 2)) as discount,
    cast(coalesce(list_sum([cast(d.amount_set.shop_money.amount as decimal(18, 2))
                            for d in li.discount_allocations]), 0) as decimal(18, 2)) as discount_shop,
    cast(coalesce(list_sum([cast(t.price_set.presentment_money.amount as decimal(18, 2))
                            for t in li.tax_lines]), 0) as decimal(18, 2)) as tax,
    cast(coalesce(list_sum([cast(t.price_set.shop_money.amount as decimal(18, 2))
                            for t in li.tax_lines]), 0) as decimal(18, 2)) as tax_shop,
    cast(coalesce(list_sum([cast(t.rate as decimal(12, 6)) for t in li.tax_lines]), 0) as decimal(12, 6)) as tax_rate,
    'shopify' as channel
from lines
