{#- Money a processor received for a customer document (an order or trade invoice), or gave
    back: succeeded payments (int_payments) and processor refunds (refund balance transactions).

    Each movement relieves accounts receivable.  When it is in the document's currency it
    relieves AR at the document's own rate (home total / total), cumulatively in time order so the
    reliefs of a fully settled document add up to its home total exactly; the difference between
    the processor's home amount and that relief is realised FX gain/loss (foreign currency, R4/R5)
    or rounding (home currency).  A movement in another currency (Shopify Payments settles in
    shop money) relieves AR by its home amount; what is left on such a document is swept as a
    settlement difference in fct_gl_entries.

    A gift card the business sold, spent on an order (processor `gift_card`), is held in the gift
    card liability: the money came in when the card was sold.

    Which document a movement belongs to: a trade invoice number (fct_invoices), else the order
    the processor names on the same channel.  Which payment a processor refund gives back is
    channel knowledge: Stripe's refund object names its charge (stg_stripe__refunds); a channel
    can instead give `payment_id` on int_balance_transactions. -#}
{%- set channels = var('channels') -%}
with payments as (
    select
        p.channel,
        p.processor,
        'payment' as source_type,
        p.payment_id as source_id,
        p.payment_id,
        p.balance_transaction_id,
        p.attempted_at as occurred_at,
        p.currency,
        p.amount,
        p.amount_home,
        p.invoice_number,
        p.order_id
    from {{ ref('int_payments') }} as p
    where p.status = 'succeeded' and p.amount_home is not null
),

refund_links as (
    {%- if 'stripe' in channels %}
    select 'stripe' as channel, r.refund_id as source_id, r.charge_id as payment_id, r.amount, upper(r.currency) as currency
    from {{ ref('stg_stripe__refunds') }} as r
    {%- else %}
    select cast(null as varchar) as channel, cast(null as varchar) as source_id, cast(null as varchar) as payment_id,
           cast(null as decimal(18, 2)) as amount, cast(null as varchar) as currency
    where false
    {%- endif %}
),

bt as (
    select
        channel, balance_transaction_id, type, source_id, order_id, occurred_at, currency,
        amount as amount_in_currency,
        {{ optional_column(ref('int_balance_transactions'), 'amount_home', 'amount', 'amount') }},
        {{ optional_column(ref('int_balance_transactions'), 'payment_id', 'cast(null as varchar)') }}
    from {{ ref('int_balance_transactions') }}
),

{#- Marketplaces without payment objects (Amazon) settle orders through balance transactions
    of type charge that name the order: each such movement settles that order. -#}
marketplace_charges as (
    select
        bt.channel,
        bt.channel as processor,
        'payment' as source_type,
        bt.balance_transaction_id as source_id,
        cast(null as varchar) as payment_id,
        bt.balance_transaction_id,
        bt.occurred_at,
        bt.currency,
        bt.amount_in_currency as amount,
        bt.amount as amount_home,
        cast(null as varchar) as invoice_number,
        bt.order_id
    from bt
    where bt.type = 'charge' and bt.order_id is not null and bt.payment_id is null and bt.amount_in_currency <> 0
      and not exists (select 1 from {{ ref('int_payments') }} as p
                      where p.channel = bt.channel and p.balance_transaction_id = bt.balance_transaction_id)
),

refunds as (
    select
        bt.channel,
        bt.channel as processor,
        'payment_refund' as source_type,
        bt.balance_transaction_id as source_id,
        bt.source_id as processor_refund_id,
        coalesce(bt.payment_id, l.payment_id) as payment_id,
        bt.balance_transaction_id,
        bt.occurred_at,
        coalesce(l.currency, p.currency) as currency,
        -l.amount as amount,
        bt.amount as amount_home,
        p.invoice_number,
        coalesce(bt.order_id, p.order_id) as order_id
    from bt
    left join refund_links as l on l.channel = bt.channel and l.source_id = bt.source_id
    left join payments as p on p.channel = bt.channel and p.payment_id = coalesce(bt.payment_id, l.payment_id)
    where bt.type = 'refund'
),

{#- Refunds paid back outside a processor balance (a till's cash, a card processor whose balance
    the pipeline cannot see): the channel names who paid them back on int_refunds.paid_back_by. -#}
direct_refunds as (
    select
        r.channel,
        r.paid_back_by as processor,
        'payment_refund' as source_type,
        r.refund_id as source_id,
        r.refund_id as processor_refund_id,
        r.payment_id,
        cast(null as varchar) as balance_transaction_id,
        r.refunded_at as occurred_at,
        r.currency,
        -r.total_amount as amount,
        -r.total_amount_home as amount_home,
        cast(null as varchar) as invoice_number,
        r.order_id
    from {{ ref('int_refunds') }} as r
    where r.paid_back_by is not null
),

{#- the four kinds of movement, column by column (only refunds name the processor's refund) -#}
movements as (
    select channel, processor, source_type, source_id, payment_id, balance_transaction_id, occurred_at, currency, amount, amount_home, invoice_number, order_id, cast(null as varchar) as processor_refund_id from payments
    union all
    select channel, processor, source_type, source_id, payment_id, balance_transaction_id, occurred_at, currency, amount, amount_home, invoice_number, order_id, cast(null as varchar) as processor_refund_id from marketplace_charges
    union all
    select channel, processor, source_type, source_id, payment_id, balance_transaction_id, occurred_at, currency, amount, amount_home, invoice_number, order_id, processor_refund_id from refunds
    union all
    select channel, processor, source_type, source_id, payment_id, balance_transaction_id, occurred_at, currency, amount, amount_home, invoice_number, order_id, processor_refund_id from direct_refunds
),

docs as (
    select
        m.*,
        coalesce(i.channel, o.channel) as doc_channel,
        coalesce(i.order_id, o.order_id) as doc_order_id,
        i.invoice_number is not null as is_invoice,
        d.currency as doc_currency,
        d.receivable_amount as doc_total,
        d.receivable_amount_home as doc_total_home
    from movements as m
    left join {{ ref('fct_invoices') }} as i on i.invoice_number = m.invoice_number
    left join {{ ref('int_orders') }} as o
        on i.invoice_number is null and o.channel = m.channel and o.order_id = m.order_id
    left join {{ ref('int_gl_documents') }} as d
        on d.channel = coalesce(i.channel, o.channel) and d.order_id = coalesce(i.order_id, o.order_id)
),

rated as (
    select
        *,
        doc_order_id is not null and currency = doc_currency and amount is not null and doc_total <> 0 as at_doc_rate
    from docs
),

cumulative as (
    select
        *,
        sum(case when at_doc_rate then amount end) over (
            partition by doc_channel, doc_order_id, at_doc_rate
            order by occurred_at, source_id rows between unbounded preceding and current row) as cum_amount
    from rated
)

select
    channel,
    processor,
    case when balance_transaction_id is not null then 'clearing'
         when processor = 'gift_card' then 'gift_card'
         when processor = 'cash' then 'cash'
         when processor = 'bank_transfer' then 'bank'
         else 'undeposited' end as held_in,
    source_type,
    source_id,
    payment_id,
    processor_refund_id,
    balance_transaction_id,
    occurred_at,
    doc_channel,
    doc_order_id,
    invoice_number,
    coalesce(is_invoice, false) as is_invoice,
    currency,
    doc_currency,
    cast(amount as decimal(18, 2)) as amount,
    cast(amount_home as decimal(18, 2)) as amount_home,
    at_doc_rate,
    cast(case
        when at_doc_rate then
            {{ money_div('cum_amount * doc_total_home', 'doc_total') }}
            - {{ money_div('(cum_amount - amount) * doc_total_home', 'doc_total') }}
        else amount_home
    end as decimal(18, 2)) as relief_home
from cumulative
