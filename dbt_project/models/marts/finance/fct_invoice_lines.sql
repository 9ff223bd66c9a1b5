{#- The lines of each trade invoice as a ledger wants them: goods at the trade unit price with
    their discount and tax, and freight as its own line.  Shopify's trade orders from its own
    staging (exact unit prices and shipping tax lines); any other channel's from the canonical lines. -#}
with
{% if 'shopify' in var('channels') %}
goods as (
    select
        'INV-' || ltrim(o.order_number, '#') as invoice_number,
        cast(l.line_id as bigint) as sort_key,
        'goods' as kind,
        l.sku,
        l.title || coalesce(' (' || l.variant_title || ')', '') as description,
        l.quantity,
        l.price as unit_amount,
        l.discount as discount_amount,
        cast(l.price * l.quantity - l.discount as decimal(18, 2)) as line_amount,
        coalesce(l.tax, 0) as tax_amount,
        coalesce(l.tax_rate, 0) as tax_rate,
        'sales_trade' as account_kind
    from {{ ref('stg_shopify__order_lines') }} as l
    join {{ ref('stg_shopify__orders') }} as o using (order_id)
    where o.customer_type = 'trade'
),

shipping as (
    select
        'INV-' || ltrim(o.order_number, '#') as invoice_number,
        9223372036854775807 as sort_key,
        'shipping' as kind,
        cast(null as varchar) as sku,
        'Freight' as description,
        1 as quantity,
        o.shipping_price as unit_amount,
        cast(0 as decimal(18, 2)) as discount_amount,
        o.shipping_price as line_amount,
        o.shipping_tax as tax_amount,
        coalesce(st.rate, 0) as tax_rate,
        'shipping_income' as account_kind
    from {{ ref('stg_shopify__orders') }} as o
    left join (
        select order_id, sum(rate) as rate
        from {{ ref('stg_shopify__tax_lines') }}
        where owner = 'shipping'
        group by order_id
    ) as st using (order_id)
    where o.customer_type = 'trade' and o.shipping_price > 0
),
{%- endif %}

{#- Trade invoices another channel raised (a ledger channel, docs/architecture.md "Ledger
    channels"): its canonical lines, which are tax-exclusive, and its shipping. -#}
other_goods as (
    select
        'INV-' || ltrim(o.order_number, '#') as invoice_number,
        row_number() over (partition by l.channel, l.order_id order by l.line_id) as sort_key,
        'goods' as kind,
        l.sku,
        l.title || coalesce(' (' || l.variant_title || ')', '') as description,
        l.quantity,
        l.unit_price as unit_amount,
        l.discount_amount,
        l.net_amount as line_amount,
        l.tax_amount,
        coalesce(l.tax_rate, 0) as tax_rate,
        'sales_trade' as account_kind
    from {{ ref('int_order_lines') }} as l
    join {{ ref('int_orders') }} as o using (channel, order_id)
    where o.customer_type = 'trade' and o.channel <> 'shopify'
),

other_shipping as (
    select
        'INV-' || ltrim(o.order_number, '#') as invoice_number,
        9223372036854775807 as sort_key,
        'shipping' as kind,
        cast(null as varchar) as sku,
        'Freight' as description,
        1 as quantity,
        o.shipping_amount as unit_amount,
        cast(0 as decimal(18, 2)) as discount_amount,
        o.shipping_amount as line_amount,
        o.tax_amount - coalesce(lt.line_tax, 0) as tax_amount,
        round((o.tax_amount - coalesce(lt.line_tax, 0)) / o.shipping_amount, 6) as tax_rate,
        'shipping_income' as account_kind
    from {{ ref('int_orders') }} as o
    left join (
        select channel, order_id, sum(tax_amount) as line_tax from {{ ref('int_order_lines') }} group by channel, order_id
    ) as lt using (channel, order_id)
    where o.customer_type = 'trade' and o.channel <> 'shopify' and o.shipping_amount > 0
)

select
    invoice_number,
    row_number() over (partition by invoice_number order by sort_key) as line_number,
    kind, sku, description, quantity, unit_amount, discount_amount, line_amount, tax_amount,
    cast(tax_rate as decimal(18, 6)) as tax_rate, account_kind
from (
    {%- if 'shopify' in var('channels') %}
    select * from goods union all select * from shipping union all
    {%- endif %}
    select * from other_goods union all select * from other_shipping
) as l
