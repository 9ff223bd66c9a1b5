{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- WooCommerce line items in the channel shape.  Prices include VAT (`prices_include_tax`), so
    the list amount is subtotal + subtotal_tax and the discount the coupon's share of it
    (tax-inclusive, like the list amount); home amounts at the order's own GBP rate. -#}
with lines as (
    select
        l.*,
        o.fx_rate,
        o.ordered_at,
        o.taxes_included,
        o.tax_rate,
        case when o.taxes_included then l.subtotal + l.subtotal_tax else l.subtotal end as list_amount,
        case when o.taxes_included then (l.subtotal + l.subtotal_tax) - (l.total + l.total_tax)
             else l.subtotal - l.total end as discount
    from {{ ref('stg_woocommerce__order_lines') }} as l
    join {{ ref('stg_woocommerce__orders') }} as o using (order_id)
)

select
    'woocommerce' as channel,
    cast(order_id as varchar) as order_id,
    cast(line_id as varchar) as line_id,
    sku,
    title,
    cast(null as varchar) as variant_title,
    quantity,
    {{ money_div('list_amount', 'quantity') }} as unit_price,
    currency,
    ordered_at,
    taxes_included,
    'retail' as customer_type,
    tax_rate,
    list_amount,
    cast(list_amount * fx_rate as decimal(18, 2)) as list_amount_home,
    discount,
    cast(discount * fx_rate as decimal(18, 2)) as discount_home,
    total_tax as tax_amount,
    cast(total_tax * fx_rate as decimal(18, 2)) as tax_amount_home
from lines
