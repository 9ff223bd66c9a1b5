{#- Bodies that several channels' intermediate models share: each model names its own columns and
    relations, the macro writes the rows in the shape the channel-agnostic union expects. Plain SQL
    that reads the same on DuckDB and PostgreSQL (engine differences stay in portable.sql). -#}

{#- int_<channel>__balance_transactions of a store whose gateways expose no balance, fee or payout
    (BigCommerce, WooCommerce, Magento): one 'charge' movement per captured order and one 'refund'
    movement per refund paid back, fees zero and no payout, so the channel's clearing account equals
    what the gateways hold.

    `charges` / `refunds`: dicts of SQL expressions over the model's own aliases, plus `from` (the
    FROM … JOIN … WHERE that yields one row per movement):
      charges: order_id, source_id, payment_id, currency, amount, occurred_at, from
      refunds: refund_id, order_id, payment_id, amount, occurred_at, from  (refunds are in GBP)
    `amount` is the movement in home currency as one term (a column or a cast); a refund's is
    negated here. -#}
{% macro gateway_balance_transactions(channel, charges, refunds) -%}
select
    '{{ channel }}' as channel,
    'charge-' || {{ charges.order_id }} as balance_transaction_id,
    cast(null as varchar) as payout_id,
    'charge' as type,
    'charge' as category,
    cast({{ charges.order_id }} as varchar) as order_id,
    {{ charges.source_id }} as source_id,
    cast({{ charges.payment_id }} as varchar) as payment_id,
    {{ charges.currency }} as currency,
    {{ charges.amount }} as amount,
    cast(0 as decimal(18, 2)) as fee,
    {{ charges.amount }} as net,
    {{ charges.occurred_at }} as occurred_at
{{ charges.from }}

union all

select
    '{{ channel }}' as channel,
    'refund-' || {{ refunds.refund_id }} as balance_transaction_id,
    cast(null as varchar) as payout_id,
    'refund' as type,
    'refund' as category,
    cast({{ refunds.order_id }} as varchar) as order_id,
    cast({{ refunds.refund_id }} as varchar) as source_id,
    cast({{ refunds.payment_id }} as varchar) as payment_id,
    'GBP' as currency,
    -{{ refunds.amount }} as amount,
    cast(0 as decimal(18, 2)) as fee,
    -{{ refunds.amount }} as net,
    {{ refunds.occurred_at }} as occurred_at
{{ refunds.from }}
{%- endmacro %}

{#- The select list of int_<channel>__payments for money an accounting platform recorded against its
    own invoices and that went straight to the bank (QuickBooks, Zoho Books, Business Central, SAP
    Business One): succeeded, no fee, nothing refunded or disputed, no balance transaction.
    Arguments are SQL expressions over the model's aliases; `invoice_number` is the platform's
    number, shown as 'INV-<number>'. -#}
{% macro bank_payment_columns(channel, payment_id, order_id, currency, amount, amount_home, attempted_at,
                              invoice_number, transaction_id, processor="'bank_transfer'") -%}
    '{{ channel }}' as channel,
    {{ processor }} as processor,
    {{ payment_id }} as payment_id,
    {{ order_id }} as order_id,
    'succeeded' as status,
    cast(null as varchar) as failure_code,
    {{ currency }} as currency,
    {{ amount }} as amount,
    {{ amount_home }} as amount_home,
    cast(0 as decimal(18, 2)) as fee_home,
    {{ attempted_at }} as attempted_at,
    'INV-' || {{ invoice_number }} as invoice_number,
    cast(0 as decimal(18, 2)) as refunded_amount,
    false as is_disputed,
    cast(null as varchar) as balance_transaction_id,
    {{ transaction_id }} as transaction_id,
    cast(null as varchar) as dispute_status
{%- endmacro %}
