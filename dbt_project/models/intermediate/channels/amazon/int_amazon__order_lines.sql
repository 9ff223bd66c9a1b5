{{ config(enabled=('amazon' in var('channels', {}))) }}
{#- Amazon order items in the channel shape.  Amazon gives no tax rate: on VAT-inclusive
    marketplaces it is the UK/EU rate (20 %, 5 % or 0) nearest to tax / (price - tax); on the US
    marketplace tax / price (informational: US prices exclude tax).  Home amounts at Amazon's
    settlement conversion (int_amazon__settlement_rates), per amount, to the cent. -#}
with items as (
    select
        i.*,
        o.currency,
        o.ordered_at,
        o.taxes_included,
        case
            when o.taxes_included and i.item_price - i.item_tax > 0 then (
                select r from (values (0.20), (0.05), (0.0)) as v(r)
                order by abs(cast(i.item_tax as double precision) / cast(i.item_price - i.item_tax as double precision) - r) limit 1)
            when not o.taxes_included and i.item_price > 0 then {{ round_double('cast(i.item_tax as double precision) / cast(i.item_price as double precision)', 6) }}
            else 0
        end as derived_rate
    from {{ ref('stg_amazon__order_items') }} as i
    join {{ ref('stg_amazon__orders') }} as o using (order_id)
)

select
    'amazon' as channel,
    i.order_id,
    i.order_item_id as line_id,
    i.sku,
    i.title,
    cast(null as varchar) as variant_title,
    i.quantity,
    i.unit_price,
    i.currency,
    i.ordered_at,
    i.taxes_included,
    'retail' as customer_type,
    cast(i.derived_rate as decimal(9, 6)) as tax_rate,
    i.item_price as list_amount,
    case when i.currency = '{{ var("home_currency") }}' then i.item_price
         else {{ money_div('i.item_price * r.rate_num', 'r.rate_den') }} end as list_amount_home,
    cast(0 as decimal(18, 2)) as discount,
    cast(0 as decimal(18, 2)) as discount_home,
    i.item_tax as tax_amount,
    case when i.currency = '{{ var("home_currency") }}' then i.item_tax
         else {{ money_div('i.item_tax * r.rate_num', 'r.rate_den') }} end as tax_amount_home,
    i.marketplace_facilitator,
    -- the tax Amazon collects and remits itself (US marketplace facilitator): not owed by the business
    case when i.marketplace_facilitator then i.item_tax else cast(0 as decimal(18, 2)) end as marketplace_tax_amount,
    case when not i.marketplace_facilitator then cast(0 as decimal(18, 2))
         when i.currency = '{{ var("home_currency") }}' then i.item_tax
         else {{ money_div('i.item_tax * r.rate_num', 'r.rate_den') }} end as marketplace_tax_amount_home
from items as i
{{ asof_left_join(ref('int_amazon__settlement_rates'), 'r', 'r.currency = i.currency and i.ordered_at >= r.started_at', 'r.started_at desc') }}
