{{ config(enabled=('ebay' in var('channels'))) }}
{#- eBay orders in the channel shape: retail buyers on eBay UK (GBP, VAT included, VAT owed by
    the business) and eBay US (USD, sales tax collected and remitted by eBay).  Shipping is
    charged only on eBay UK; its VAT is worked out at the UK standard rate.  Nothing is void: an
    order cancelled after payment is refunded in full (see int_ebay__refunds). -#}
{%- set uk_vat = '0.20' -%}
with lines as (
    select order_id, sum(marketplace_tax) as marketplace_tax, sum(marketplace_tax_home) as marketplace_tax_home
    from {{ ref('stg_ebay__order_lines') }}
    group by order_id
),

shipping as (
    select
        *,
        case when taxes_included then {{ money_div('delivery_cost * ' ~ uk_vat, '1 + ' ~ uk_vat) }} else 0 end as ship_tax,
        case when taxes_included then {{ money_div('delivery_cost_home * ' ~ uk_vat, '1 + ' ~ uk_vat) }} else 0 end as ship_tax_home
    from {{ ref('stg_ebay__orders') }}
)

select
    'ebay' as channel,
    o.order_id,
    o.order_id as order_number,
    o.buyer_username as customer_id,
    o.customer_email,
    cast(null as varchar) as customer_company,
    'retail' as customer_type,
    o.currency,
    o.ordered_at,
    o.updated_at,
    o.cancelled_at,
    lower(o.order_payment_status) as platform_status,
    false as is_void,
    o.taxes_included,
    o.tax_treatment,
    o.ship_country as country,
    o.ship_region as region,
    cast(null as integer) as terms_days,
    cast(null as date) as due_on,
    cast(o.delivery_cost - o.ship_tax as decimal(18, 2)) as shipping_amount,
    cast(o.delivery_cost_home - o.ship_tax_home as decimal(18, 2)) as shipping_amount_home,
    cast(o.ship_tax as decimal(18, 2)) as shipping_tax,
    cast(o.ship_tax_home as decimal(18, 2)) as shipping_tax_home,
    cast(coalesce(l.marketplace_tax, 0) as decimal(18, 2)) as marketplace_tax_amount,
    cast(coalesce(l.marketplace_tax_home, 0) as decimal(18, 2)) as marketplace_tax_amount_home,
    o.marketplace_id
from shipping as o
left join lines as l using (order_id)
