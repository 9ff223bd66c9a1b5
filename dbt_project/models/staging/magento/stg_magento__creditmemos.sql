{{ config(enabled=('magento' in var('channels'))) }}
{#- One row per credit memo (a refund): shipping refunded ex tax and its tax, totals, with
    `_base` twins in the base currency. -#}
select
    entity_id as refund_id,
    increment_id as refund_number,
    order_id,
    created_at as refunded_at,
    upper(order_currency_code) as currency,
    cast(shipping_amount as decimal(18, 2)) as shipping_amount,
    cast(shipping_tax_amount as decimal(18, 2)) as shipping_tax,
    cast(tax_amount as decimal(18, 2)) as tax_amount,
    cast(adjustment as decimal(18, 2)) as adjustment,
    cast(grand_total as decimal(18, 2)) as grand_total,
    cast(base_grand_total as decimal(18, 2)) as grand_total_base,
    cast(base_shipping_amount as decimal(18, 2)) as shipping_amount_base,
    cast(base_shipping_tax_amount as decimal(18, 2)) as shipping_tax_base,
    cast(base_to_order_rate as decimal(18, 6)) as base_to_order_rate,
    'magento' as channel
from {{ source('magento', 'creditmemos') }}
