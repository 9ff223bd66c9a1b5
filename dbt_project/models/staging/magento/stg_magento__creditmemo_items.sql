{{ config(enabled=('magento' in var('channels'))) }}
{#- One row per credit memo item: the order item it refunds, units and VAT-inclusive amounts. -#}
{%- set item_shape = '[{"entity_id": "BIGINT", "order_item_id": "BIGINT", "sku": "VARCHAR", "qty": "DECIMAL(18,4)",
    "row_total_incl_tax": "VARCHAR", "base_row_total_incl_tax": "VARCHAR", "discount_amount": "VARCHAR",
    "base_discount_amount": "VARCHAR", "tax_amount": "VARCHAR", "base_tax_amount": "VARCHAR"}]' -%}

with items as (
    select entity_id as refund_id, order_id, unnest(from_json(items, '{{ item_shape }}')) as i
    from {{ source('magento', 'creditmemos') }}
)

select
    i.entity_id as refund_line_id,
    refund_id,
    order_id,
    i.order_item_id as line_id,
    i.sku,
    cast(i.qty as integer) as quantity,
    cast(i.row_total_incl_tax as decimal(18, 2)) as row_total_incl_tax,
    cast(i.base_row_total_incl_tax as decimal(18, 2)) as row_total_incl_tax_base,
    cast(i.discount_amount as decimal(18, 2)) as discount_amount,
    cast(i.base_discount_amount as decimal(18, 2)) as discount_amount_base,
    cast(i.tax_amount as decimal(18, 2)) as tax_amount,
    cast(i.base_tax_amount as decimal(18, 2)) as tax_amount_base,
    'magento' as channel
from items
