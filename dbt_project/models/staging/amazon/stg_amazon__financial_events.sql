{{ config(enabled=('amazon' in var('channels', {}))) }}
{#- One row per money component of a financial event: signed amounts as Amazon posts them
    (charges positive, fees and taxes withheld negative; reversed on refunds). -#}
select
    component_id,
    group_id,
    event_type,
    cast(posted_date as timestamptz) as posted_at,
    amazon_order_id as order_id,
    marketplace_name,
    order_item_id,
    order_adjustment_item_id,
    seller_sku as sku,
    quantity,
    list_name,
    component_type,
    tax_collection_model,
    list_name in ('ItemFeeList', 'ItemFeeAdjustmentList', 'FeeList', 'ShipmentFeeList', 'OrderFeeList') as is_fee,
    upper(currency) as currency,
    cast(amount as decimal(18, 2)) as amount,
    fee_reason,
    'amazon' as channel
from {{ source('amazon', 'financial_events') }}
