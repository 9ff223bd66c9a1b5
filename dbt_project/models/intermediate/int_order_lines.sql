{#- Every order line from every sales channel in one canonical, tax-exclusive shape.

    gross  = list price x quantity, ex tax.  For tax-inclusive prices the ex-tax gross is
             price x quantity / (1 + rate), rounded to the cent.
    net    = what the line sold for, ex tax, after its discount.
    discount (ex tax) = gross - net, so gross - discount = net holds exactly.
    Home amounts use the platform's own conversion of each component (Shopify shop money).
    Revenue and COGS are recognised at the order date (the cost valid on that business date). -#}
with unioned as (
    -- a channel may give the tax its marketplace collects and remits itself (0 where none does),
    -- and the category of a line outside the catalogue (e.g. 'services': no COGS)
    {{ union_channels_with('order_lines', [('marketplace_tax_amount', 'decimal(18, 2)'),
                                           ('marketplace_tax_amount_home', 'decimal(18, 2)'),
                                           ('category', 'varchar')]) }}
),

priced as (
    select
        *,
        case when taxes_included then {{ money_div('list_amount', '1 + tax_rate') }} else list_amount end as gross_amount,
        case when taxes_included then {{ money_div('list_amount_home', '1 + tax_rate') }} else list_amount_home end as gross_amount_home,
        list_amount - discount - case when taxes_included then tax_amount else 0 end as net_amount,
        list_amount_home - discount_home - case when taxes_included then tax_amount_home else 0 end as net_amount_home
    from unioned
)

select
    p.channel,
    p.order_id,
    p.line_id,
    p.sku,
    coalesce(pr.category, p.category, 'unknown') as category,
    coalesce(pr.unit, 'piece') as unit,
    p.title,
    p.variant_title,
    p.quantity,
    case when pr.unit = '10cm' then cast(p.quantity as decimal(18, 2)) * pr.metres_per_unit end as metres,
    p.unit_price,
    p.currency,
    p.ordered_at,
    p.taxes_included,
    p.customer_type,
    p.tax_rate,
    cast(p.gross_amount as decimal(18, 2)) as gross_amount,
    cast(p.gross_amount - p.net_amount as decimal(18, 2)) as discount_amount,
    cast(p.net_amount as decimal(18, 2)) as net_amount,
    cast(p.tax_amount as decimal(18, 2)) as tax_amount,
    cast(p.gross_amount_home as decimal(18, 2)) as gross_amount_home,
    cast(p.gross_amount_home - p.net_amount_home as decimal(18, 2)) as discount_amount_home,
    cast(p.net_amount_home as decimal(18, 2)) as net_amount_home,
    cast(p.tax_amount_home as decimal(18, 2)) as tax_amount_home,
    cast(coalesce(p.marketplace_tax_amount, 0) as decimal(18, 2)) as marketplace_tax_amount,
    cast(coalesce(p.marketplace_tax_amount_home, 0) as decimal(18, 2)) as marketplace_tax_amount_home,
    coalesce(c.unit_cost_gbp, case when pr.sku is null and p.category is not null then 0 end) as unit_cost_home,
    cast(coalesce(c.unit_cost_gbp * p.quantity, case when pr.sku is null and p.category is not null then 0 end)
         as decimal(18, 2)) as cogs_home
from priced as p
left join {{ ref('products') }} as pr on pr.sku = p.sku
{{ asof_left_join(ref('product_costs'), 'c', "c.sku = p.sku and " ~ business_date('p.ordered_at') ~ " >= c.valid_from",
                  'c.valid_from desc') }}
