{{ config(enabled=('amazon' in var('channels', {}))) }}
{#- Every Amazon financial event component as a balance transaction, in the marketplace currency:
    charges (Principal, Tax …) and taxes withheld as amounts, fees with amount 0 and a positive
    fee (net = -fee; a returned fee is a negative fee).  Shipment components are 'charge', refund
    components 'refund', service fees 'fee', adjustments 'adjustment'.  payout_id is the
    settlement once it has closed.  Service fees carry no date: they occur when their settlement
    period starts.  fee_home / amount_home / net_home at Amazon's settlement conversion. -#}
with components as (
    select
        e.*,
        g.processing_status,
        coalesce(e.posted_at, g.started_at) as occurred_at,
        case when e.is_fee then cast(0 as decimal(18, 2)) else e.amount end as bt_amount,
        case when e.is_fee then -e.amount else cast(0 as decimal(18, 2)) end as bt_fee
    from {{ ref('stg_amazon__financial_events') }} as e
    left join {{ ref('stg_amazon__financial_event_groups') }} as g using (group_id)
)

select
    'amazon' as channel,
    c.component_id as balance_transaction_id,
    case when c.processing_status = 'Closed' then c.group_id end as payout_id,
    case c.event_type when 'ShipmentEvent' then 'charge' when 'RefundEvent' then 'refund'
                      when 'ServiceFeeEvent' then 'fee' else 'adjustment' end as type,
    c.component_type as category,
    c.order_id,
    coalesce(c.order_adjustment_item_id, c.order_item_id) as source_id,
    c.currency,
    c.bt_amount as amount,
    c.bt_fee as fee,
    c.amount as net,
    c.occurred_at,
    {%- for col, expr in [('amount_home', 'c.bt_amount'), ('fee_home', 'c.bt_fee'), ('net_home', 'c.amount')] %}
    case when c.currency = '{{ var("home_currency") }}' then {{ expr }}
         else {{ money_div(expr ~ ' * r.rate_num', 'r.rate_den') }} end as {{ col }},
    {%- endfor %}
    c.list_name,
    c.tax_collection_model,
    c.group_id as settlement_id
from components as c
{{ asof_left_join(ref('int_amazon__settlement_rates'), 'r', 'r.currency = c.currency and c.occurred_at >= r.started_at', 'r.started_at desc') }}
