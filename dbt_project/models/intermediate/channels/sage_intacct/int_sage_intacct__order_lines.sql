{{ config(enabled=('sage_intacct' in var('channels'))) }}
{#- Goods lines of the Sales Invoices (freight is the order's shipping): trade prices ex tax, no
    discounts; home = Intacct's base value, tax at the document's rate. -#}
select
    'sage_intacct' as channel,
    cast(l.record_no as varchar) as order_id,
    cast(l.line_id as varchar) as line_id,
    l.item_id as sku,
    l.description as title,
    case when l.unit = '10cm' then 'per 10 cm' end as variant_title,
    cast(l.quantity as integer) as quantity,
    cast(l.unit_price as decimal(18, 2)) as unit_price,
    d.currency,
    d.created_at as ordered_at,
    false as taxes_included,
    'trade' as customer_type,
    l.tax_rate,
    l.amount as list_amount,
    l.amount_home as list_amount_home,
    cast(0 as decimal(18, 2)) as discount,
    cast(0 as decimal(18, 2)) as discount_home,
    l.tax_amount,
    cast(round(l.tax_amount * d.exchange_rate, 2) as decimal(18, 2)) as tax_amount_home
from {{ ref('stg_sage_intacct__document_lines') }} as l
join {{ ref('stg_sage_intacct__documents') }} as d using (record_no)
where not l.is_freight
