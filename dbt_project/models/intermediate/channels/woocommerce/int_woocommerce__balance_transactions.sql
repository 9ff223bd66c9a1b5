{{ config(enabled=('woocommerce' in var('channels'))) }}
{#- Money the store's gateways (Stripe card, PayPal) hold for us: each paid order's capture and
    each refund paid back, in GBP at the order's own rate.  WooCommerce exposes no gateway
    balance, fee or payout, so these movements are derived from the order's payment (`date_paid`,
    `transaction_id`) and its refunds (`refunded_payment`); fees are zero and nothing is paid out
    here, which keeps the channel's clearing account equal to what the gateways hold. -#}
with orders as (
    select * from {{ ref('stg_woocommerce__orders') }}
)

{% set refunds_from %}
from {{ ref('stg_woocommerce__refunds') }} as r
join orders as o using (order_id)
where r.refunded_payment
{% endset %}
{{ gateway_balance_transactions('woocommerce',
    charges={'order_id': 'o.order_id', 'source_id': 'o.transaction_id', 'payment_id': 'o.order_id',
             'currency': "'GBP'", 'amount': 'cast(o.total * o.fx_rate as decimal(18, 2))',
             'occurred_at': 'o.paid_at', 'from': 'from orders as o where o.paid_at is not null'},
    refunds={'refund_id': 'r.refund_id', 'order_id': 'r.order_id', 'payment_id': 'r.order_id',
             'amount': 'cast(r.amount * o.fx_rate as decimal(18, 2))', 'occurred_at': 'r.refunded_at',
             'from': refunds_from}) }}
