{{ config(enabled=('magento' in var('channels'))) }}
{#- One row per credit memo item: the order item it refunds, units and VAT-inclusive amounts. -#}
{%- set item_shape = '[{"entity_id": "BIGINT", "order_item_id": "BIGINT", "sku": "VARCHAR", "qty": "DECIMAL(18,4)",
    "row_total_incl_tax": "VARCHAR", "base_row_total_incl_tax": "VARCHAR", "discount_amount": "VARCHAR",
    "base_discount_amount": "VARCHAR", "tax_amount": "VARCHAR", "base_tax_amount": "VARCHAR"}]' -%}

with items as (
    select entity_id as refund_id, order_id, {{ json_rows('items', item_shape) }} as i
    from {{ source('magento', 'creditmemos') }}
)

select
    cast({{ jget('i', 'entity_id') }} as bigint) as refund_line_id,
    refund_id,
    order_id,
    cast({{ jget('i', 'order_item_id') }} as bigint) as line_id,
    cast({{ jget('i', 'sku') }} as varchar) as sku,
    cast(cast({{ jget('i', 'qty') }} as decimal(18, 4)) as integer) as quantity,
    cast({{ jget('i', 'row_total_incl_tax') }} as decimal(18, 2)) as row_total_incl_tax,
    cast({{ jget('i', 'base_row_total_incl_tax') }} as decimal(18, 2)) as row_total_incl_tax_base,
    cast({{ jget('i', 'discount_amount') }} as decimal(18, 2)) as discount_amount,
    cast({{ jget('i', 'base_discount_amount') }} as decimal(18, 2)) as discount_amount_base,
    cast({{ jget('i', 'tax_amount') }} as decimal(18, 2)) as tax_amount,
    cast({{ jget('i', 'base_tax_amount') }} as decimal(18, 2)) as tax_amount_base,
    'magento' as channel
from items
