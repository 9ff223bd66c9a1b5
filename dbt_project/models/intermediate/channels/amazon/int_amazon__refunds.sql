{{ config(enabled=('amazon' in var('channels', {}))) }}
{#- Amazon refunds (RefundEvent, one per adjusted order item) in the channel shape: goods
    (Principal) and tax given back, positive.  marketplace_tax_amount is the refunded tax Amazon
    handled as marketplace facilitator.  No COGS reversal: whether a returned unit could be
    resold is in FBA's returns report, not in the Finances API. -#}
with refunds as (
    select
        order_adjustment_item_id as refund_id,
        {{ any_val('order_id') }} as order_id,
        min(posted_at) as refunded_at,
        {{ any_val('currency') }} as currency,
        -sum(case when list_name = 'ItemChargeAdjustmentList' and component_type in ('Principal', 'GiftWrap', 'Goodwill')
                  then amount else 0 end) as goods_amount,
        -sum(case when list_name = 'ItemChargeAdjustmentList' and component_type in ('ShippingCharge')
                  then amount else 0 end) as shipping_amount,
        -sum(case when list_name = 'ItemChargeAdjustmentList' and component_type in ('Tax', 'ShippingTax', 'GiftWrapTax')
                  then amount else 0 end) as tax_amount,
        sum(case when list_name = 'ItemTaxWithheldList' then amount else 0 end) as marketplace_tax_amount,
        max(quantity) as units
    from {{ ref('stg_amazon__financial_events') }}
    where event_type = 'RefundEvent'
    group by order_adjustment_item_id
)

select
    'amazon' as channel,
    f.refund_id,
    f.order_id,
    f.refunded_at,
    f.currency,
    cast(f.goods_amount as decimal(18, 2)) as goods_amount,
    cast(f.shipping_amount as decimal(18, 2)) as shipping_amount,
    cast(f.tax_amount as decimal(18, 2)) as tax_amount,
    {%- for col in ['goods_amount', 'shipping_amount', 'tax_amount', 'marketplace_tax_amount'] %}
    case when f.currency = '{{ var("home_currency") }}' then cast(f.{{ col }} as decimal(18, 2))
         else {{ money_div('f.' ~ col ~ ' * r.rate_num', 'r.rate_den') }} end as {{ col }}_home,
    {%- endfor %}
    cast(f.marketplace_tax_amount as decimal(18, 2)) as marketplace_tax_amount,
    cast(0 as decimal(18, 2)) as cogs_reversal_home,
    f.units,
    false as restock,
    'Amazon refund' as note
from refunds as f
{{ asof_left_join(ref('int_amazon__settlement_rates'), 'r', 'r.currency = f.currency and f.refunded_at >= r.started_at', 'r.started_at desc') }}
