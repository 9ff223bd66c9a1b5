{{ config(enabled=('amazon' in var('channels', {}))) }}
{#- One row per Amazon order.  Amazon's European marketplaces list prices including VAT; the
    US marketplace excludes sales tax, which Amazon collects as marketplace facilitator. -#}
with item_rows as (
    select order_id, {{ json_rows('order_items', '[{"item_price": "VARCHAR", "item_tax": "VARCHAR", "tax_model": "VARCHAR"}]') }} as i
    from {{ source('amazon', 'orders') }}
),

items as (
    select
        order_id,
        cast(sum(cast({{ jget('i', 'item_tax') }} as decimal(18, 2)))
             filter (where {{ jget('i', 'tax_model') }} = 'MarketplaceFacilitator') as decimal(18, 2)) as marketplace_tax,
        cast(sum(cast({{ jget('i', 'item_price') }} as decimal(18, 2))) as decimal(18, 2)) as items_price,
        cast(sum(cast({{ jget('i', 'item_tax') }} as decimal(18, 2))) as decimal(18, 2)) as items_tax
    from item_rows
    group by order_id
)

select
    o.order_id,
    o.api_version,
    o.marketplace_id,
    o.marketplace_name,
    o.buyer_email,
    upper(o.currency) as currency,
    cast(o.created_time as timestamptz) as ordered_at,
    cast(o.last_updated_time as timestamptz) as updated_at,
    case when o.fulfillment_status = 'CANCELLED' then cast(o.last_updated_time as timestamptz) end as cancelled_at,
    o.fulfillment_status,
    o.fulfilled_by,
    o.country_code,
    o.state_or_region,
    o.marketplace_id in ('A1F83G8C2ARO7P', 'A1PA6795UKMFR9', 'A13V1IB3VIYZZH', 'APJ6JRA9NG5V4', 'A1RKKUPIHCS9HS',
                         'A1805IZSGTT6HS', 'A2NODRKZP88ZB9', 'A1C3SOZRARQ6R3', 'AMEN7PMS3EDWL') as taxes_included,
    case when o.marketplace_id = 'A1F83G8C2ARO7P' then 'uk_vat'
         when o.marketplace_id in ('ATVPDKIKX0DER', 'A2EUQ1WTGCTBG2', 'A1AM78C64UM0Y8') then 'us_sales_tax'
         else 'eu_oss_vat' end as tax_treatment,
    coalesce(i.items_price, 0) as items_price,
    coalesce(i.items_tax, 0) as items_tax,
    coalesce(i.marketplace_tax, 0) as marketplace_tax,
    'amazon' as channel
from {{ source('amazon', 'orders') }} as o
left join items as i using (order_id)
