{{ config(enabled=('magento' in var('channels'))) }}
{#- Money the store's gateways hold for us: each order's capture and each credit memo paid back, in
    the base currency (GBP).  Magento exposes no gateway fee or payout; fees are zero and nothing is
    paid out here, so the channel's clearing account equals what the gateways hold. -#}
{% set charges_from %}
from {{ ref('stg_magento__orders') }} as o
where o.is_paid
{% endset %}
{{ gateway_balance_transactions('magento',
    charges={'order_id': 'o.order_id', 'source_id': 'o.transaction_id', 'payment_id': 'o.order_id',
             'currency': 'o.base_currency', 'amount': 'o.grand_total_base', 'occurred_at': 'o.ordered_at',
             'from': charges_from},
    refunds={'refund_id': 'c.refund_id', 'order_id': 'c.order_id', 'payment_id': 'c.order_id',
             'amount': 'c.grand_total_base', 'occurred_at': 'c.refunded_at',
             'from': 'from ' ~ ref('stg_magento__creditmemos') ~ ' as c'}) }}
