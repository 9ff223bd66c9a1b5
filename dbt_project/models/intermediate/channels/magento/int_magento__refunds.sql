{{ config(enabled=('magento' in var('channels'))) }}
{#- Magento credit memos in the channel shape: goods refunded ex tax (VAT-inclusive row less
    discount less VAT), shipping ex tax, all VAT refunded; home = base-currency amounts.
    Returns are not put back in stock through credit memos in this store: no COGS reversal. -#}
with items as (
    select
        refund_id,
        sum(row_total_incl_tax - discount_amount - tax_amount) as goods_amount,
        sum(tax_amount) as goods_tax,
        sum(row_total_incl_tax_base - discount_amount_base - tax_amount_base) as goods_amount_home,
        sum(tax_amount_base) as goods_tax_home,
        sum(quantity) as units
    from {{ ref('stg_magento__creditmemo_items') }}
    group by refund_id
)

select
    'magento' as channel,
    cast(c.refund_id as varchar) as refund_id,
    cast(c.order_id as varchar) as order_id,
    c.refunded_at,
    c.currency,
    coalesce(i.goods_amount, 0) as goods_amount,
    c.shipping_amount,
    coalesce(i.goods_tax, 0) + c.shipping_tax as tax_amount,
    coalesce(i.goods_amount_home, 0) as goods_amount_home,
    c.shipping_amount_base as shipping_amount_home,
    coalesce(i.goods_tax_home, 0) + c.shipping_tax_base as tax_amount_home,
    cast(0 as decimal(18, 2)) as cogs_reversal_home,
    coalesce(i.units, 0) as units,
    false as restock,
    cast(null as varchar) as note
from {{ ref('stg_magento__creditmemos') }} as c
left join items as i using (refund_id)
