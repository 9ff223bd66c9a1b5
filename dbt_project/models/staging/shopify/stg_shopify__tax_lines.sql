{{ config(enabled=('shopify' in var('channels'))) }}
{#- One row per tax line of an order's line items and shipping lines — the platform's own tax
    computation, the truth for tax (scenario S13).  The order-level `tax_lines` (sums per rate)
    are not repeated here.  `position` is the 0-based index within its owner's tax lines. -#}
{%- set bag = '{"shop_money": {"amount": "VARCHAR"}, "presentment_money": {"amount": "VARCHAR"}}' -%}
{%- set tax_shape = '[{"title": "VARCHAR", "rate": "VARCHAR", "price_set": ' ~ bag ~ '}]' -%}

with orders as (
    select id as order_id, upper(presentment_currency) as currency, line_items, shipping_lines
    from {{ source('shopify', 'orders') }}
),

owners as (
    select
        order_id, currency, 'line' as owner,
        {{ json_rows('line_items', '[{"id": "BIGINT", "tax_lines": ' ~ tax_shape ~ '}]') }} as o
    from orders
    union all
    select
        order_id, currency, 'shipping' as owner,
        {{ json_rows('shipping_lines', '[{"id": "BIGINT", "tax_lines": ' ~ tax_shape ~ '}]') }} as o
    from orders
),

taxes as (
    select
        owners.order_id, owners.currency, owners.owner, cast({{ jget('owners.o', 'id') }} as bigint) as owner_id,
        t.tax_line, t.pos
    from owners, {{ jlist_rows(jlist('owners.o', 'tax_lines')) }} with ordinality as t(tax_line, pos)
)

select
    order_id || ':' || owner || ':' || owner_id || ':' || (pos - 1) as tax_line_key,
    order_id,
    owner,
    case when owner = 'line' then owner_id end as line_id,
    case when owner = 'shipping' then owner_id end as shipping_line_id,
    cast(pos - 1 as integer) as position,
    cast({{ jget('tax_line', 'title') }} as varchar) as title,
    cast({{ jget('tax_line', 'rate') }} as decimal(12, 6)) as rate,
    currency,
    cast({{ jget('tax_line', 'price_set.presentment_money.amount') }} as decimal(18, 2)) as amount,
    cast({{ jget('tax_line', 'price_set.shop_money.amount') }} as decimal(18, 2)) as amount_shop,
    'shopify' as channel
from taxes
