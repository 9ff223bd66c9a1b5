{{ config(enabled=('bigcommerce' in var('channels'))) }}
{#- Money the store's gateways (BigCommerce Payments, PayPal) hold for us: each captured
    purchase and each refund paid back, in GBP at the order's own rate.  BigCommerce exposes no
    gateway balance, fee or payout, so fees are zero and nothing is paid out here, which keeps the
    channel's clearing account (1387) equal to what the gateways hold. -#}
with purchases as (
    select t.*, o.fx_rate
    from {{ ref('stg_bigcommerce__transactions') }} as t
    join {{ ref('stg_bigcommerce__orders') }} as o using (order_id)
    where t.event = 'purchase' and t.status = 'ok'
)

{% set refunds_from %}
from {{ ref('stg_bigcommerce__refunds') }} as r
join purchases as p using (order_id)
{% endset %}
{{ gateway_balance_transactions('bigcommerce',
    charges={'order_id': 'p.order_id', 'source_id': 'p.gateway_transaction_id', 'payment_id': 'p.transaction_id',
             'currency': "'GBP'", 'amount': money_div('p.amount', 'p.fx_rate'), 'occurred_at': 'p.created_at',
             'from': 'from purchases as p'},
    refunds={'refund_id': 'r.refund_id', 'order_id': 'r.order_id', 'payment_id': 'p.transaction_id',
             'amount': money_div('r.total_amount', 'p.fx_rate'), 'occurred_at': 'r.refunded_at',
             'from': refunds_from}) }}
