{#- The general ledger: every order, refund, payment, processor refund, fee, dispute and payout as
    a balanced double entry in home currency (accounts: seed gl_accounts; per-channel accounts:
    seed gl_channel_accounts; tax accounts per treatment: seed gl_tax_treatments).

      order       Dr AR (total) · Dr discounts · Cr sales (channel, or trade) at list price ex tax
                  · Cr shipping income · Cr tax payable (jurisdiction) ;  Dr COGS · Cr inventory
      refund      Dr refunds · Dr shipping income · Dr tax payable · Cr AR ;  Dr inventory · Cr COGS (restocked)
      order       AR and tax leave out tax a marketplace collects and remits (int_gl_documents)
                  · Cr gift card liability (2400) for gift cards sold: no revenue, no VAT (S12)
                  · tax payable is the platform's order-level tax; what its line and shipping tax
                  lines add up to beyond it (once-per-order rounding) is Cr rounding (7900) (S13)
      payment     Dr processor clearing (processor's home amount; the till for cash, undeposited
                  funds for a payment no processor balance holds, the gift card liability for a gift
                  card spent) · Cr AR (document rate) · ± FX / rounding
      payment_refund  the reverse of a payment
      settlement_difference  what is left on a paid-at-checkout order's AR when its payments settle
                  in another currency (sub-unit residues of converting each component): swept to FX / rounding
      fee         Dr fees (processing or marketplace) · Cr clearing
      dispute     Dr disputes receivable · Cr clearing;  reversal (won): Dr clearing · Cr disputes
                  receivable · ± FX;  lost: Dr chargeback losses · Cr disputes receivable
      adjustment  any other balance movement: clearing against processor adjustments
      payout      Dr bank · Cr clearing, on the payout's date, once paid

    One row per line with debit_home or credit_home (never both); each entry_id balances. -#}
{%- set home = var('home_currency') -%}
{%- set limit = var('settlement_write_off_limit', 1.00) -%}
with orders as (
    select o.*, a.sales_account, a.trade_sales_account, t.jurisdiction, t.tax_account,
           i.invoice_number is not null as is_invoice,
           d.receivable_amount, d.receivable_amount_home, d.marketplace_tax_amount, d.marketplace_tax_amount_home
    from {{ ref('int_orders') }} as o
    join {{ ref('int_gl_documents') }} as d using (channel, order_id)
    join {{ ref('int_gl_channel_accounts') }} as a using (channel)
    join {{ ref('int_order_tax_jurisdictions') }} as t using (channel, order_id)
    left join {{ ref('fct_invoices') }} as i on i.channel = o.channel and i.order_id = o.order_id
    where not o.is_void
),

order_lines as (
    select 'order:' || channel || ':' || order_id as entry_id, 'order' as source_type, order_id as source_id,
           channel, ordered_at as posted_at, currency, channel as document_channel, order_id as document_id,
           cast(null as varchar) as jurisdiction, 1 as seq, '1200' as account_code,
           receivable_amount_home as amount_home, receivable_amount as amount, 'Receivable for order ' || coalesce(order_number, order_id) as description
    from orders
    union all
    select 'order:' || channel || ':' || order_id, 'order', order_id, channel, ordered_at, currency, null, null, null, 2,
           case when customer_type = 'trade' then trade_sales_account else sales_account end,
           -gross_amount_home, -gross_amount, 'Sales at list price, ex tax'
    from orders
    union all
    select 'order:' || channel || ':' || order_id, 'order', order_id, channel, ordered_at, currency, null, null, null, 3,
           '4100', discount_amount_home, discount_amount, 'Discounts'
    from orders
    union all
    select 'order:' || channel || ':' || order_id, 'order', order_id, channel, ordered_at, currency, null, null, null, 4,
           '4300', -shipping_amount_home, -shipping_amount, 'Shipping charged'
    from orders
    union all
    select 'order:' || channel || ':' || order_id, 'order', order_id, channel, ordered_at, currency, null, null, jurisdiction, 5,
           tax_account, -(tax_amount_home - marketplace_tax_amount_home), -(tax_amount - marketplace_tax_amount),
           'Tax collected (' || jurisdiction || ')'
    from orders
    union all
    select 'order:' || channel || ':' || order_id, 'order', order_id, channel, ordered_at, '{{ home }}', null, null, null, 6,
           '5000', cogs_home, cogs_home, 'Cost of goods sold'
    from orders
    union all
    select 'order:' || channel || ':' || order_id, 'order', order_id, channel, ordered_at, '{{ home }}', null, null, null, 7,
           '1300', -cogs_home, -cogs_home, 'Inventory sold'
    from orders
    union all
    select 'order:' || channel || ':' || order_id, 'order', order_id, channel, ordered_at, currency, null, null, null, 8,
           '2400', -gift_card_amount_home, -gift_card_amount, 'Gift cards sold (liability until spent)'
    from orders
    union all
    select 'order:' || channel || ':' || order_id, 'order', order_id, channel, ordered_at, currency, null, null, null, 9,
           '7900', -tax_rounding_amount_home, -tax_rounding_amount, 'Tax rounding (order tax vs its line tax lines)'
    from orders
),

refunds as (
    select r.*, o.jurisdiction, o.tax_account, o.order_number,
           m.marketplace_tax_amount as mp_tax, m.marketplace_tax_amount_home as mp_tax_home
    from {{ ref('int_refunds') }} as r
    join {{ ref('int_gl_refund_tax') }} as m using (channel, refund_id)
    join orders as o using (channel, order_id)
),

refund_lines as (
    select 'refund:' || channel || ':' || refund_id as entry_id, 'refund' as source_type, refund_id as source_id,
           channel, refunded_at as posted_at, currency, null as document_channel, null as document_id,
           null as jurisdiction, 1 as seq, '4200' as account_code, goods_amount_home as amount_home,
           goods_amount as amount, 'Goods refunded, ex tax' as description
    from refunds
    union all
    select 'refund:' || channel || ':' || refund_id, 'refund', refund_id, channel, refunded_at, currency, null, null, null, 2,
           '4300', shipping_amount_home, shipping_amount, 'Shipping refunded'
    from refunds
    union all
    select 'refund:' || channel || ':' || refund_id, 'refund', refund_id, channel, refunded_at, currency, null, null, jurisdiction, 3,
           tax_account, tax_amount_home - mp_tax_home, tax_amount - mp_tax, 'Tax refunded (' || jurisdiction || ')'
    from refunds
    union all
    select 'refund:' || channel || ':' || refund_id, 'refund', refund_id, channel, refunded_at, currency, channel, order_id, null, 4,
           '1200', -(total_amount_home - mp_tax_home), -(total_amount - mp_tax), 'Refund owed on order ' || coalesce(order_number, order_id)
    from refunds
    union all
    select 'refund:' || channel || ':' || refund_id, 'refund', refund_id, channel, refunded_at, '{{ home }}', null, null, null, 5,
           '1300', cogs_reversal_home, cogs_reversal_home, 'Goods returned to stock'
    from refunds
    union all
    select 'refund:' || channel || ':' || refund_id, 'refund', refund_id, channel, refunded_at, '{{ home }}', null, null, null, 6,
           '5000', -cogs_reversal_home, -cogs_reversal_home, 'Cost of goods returned'
    from refunds
),

settlements as (
    select s.*, case s.held_in when 'clearing' then a.clearing_account when 'cash' then '1050' when 'bank' then '1100'
                               when 'gift_card' then '2400' else '1060' end as clearing_account
    from {{ ref('int_gl_settlements') }} as s
    join {{ ref('int_gl_channel_accounts') }} as a using (channel)
),

settlement_lines as (
    select source_type || ':' || channel || ':' || source_id as entry_id, source_type, source_id, channel,
           occurred_at as posted_at, '{{ home }}' as currency, null as document_channel, null as document_id,
           null as jurisdiction, 1 as seq, clearing_account as account_code, amount_home, amount_home as amount,
           case when source_type = 'payment' then 'Payment received by ' else 'Payment refunded by ' end || channel as description
    from settlements
    union all
    select source_type || ':' || channel || ':' || source_id, source_type, source_id, channel, occurred_at, currency,
           doc_channel, doc_order_id, null, 2, '1200', -relief_home, -amount,
           'Receivable settled' || coalesce(' (' || invoice_number || ')', '')
    from settlements
    union all
    select source_type || ':' || channel || ':' || source_id, source_type, source_id, channel, occurred_at, '{{ home }}',
           null, null, null, 3, case when coalesce(doc_currency, '{{ home }}') = '{{ home }}' then '7900' else '7100' end,
           relief_home - amount_home, null,
           case when coalesce(doc_currency, '{{ home }}') = '{{ home }}' then 'Rounding' else 'Realised FX on settlement' end
    from settlements
),

{#- AR residues of paid-at-checkout (non-invoice) orders: the running AR balance per order and
    business day before sweeping; on a day it is within the write-off limit, what is left since
    the last sweep is moved to FX (foreign currency) or rounding (home currency). -#}
ar_moves as (
    select document_channel, document_id, posted_at, amount_home
    from (select * from order_lines union all select * from refund_lines union all select * from settlement_lines) as l
    where account_code = '1200' and document_id is not null
),

ar_days as (
    select m.document_channel, m.document_id, {{ business_date('m.posted_at') }} as posted_on,
           max(m.posted_at) as posted_at, sum(m.amount_home) as day_amount
    from ar_moves as m
    join orders as o on o.channel = m.document_channel and o.order_id = m.document_id
    where not o.is_invoice
    group by 1, 2, 3
),

ar_running as (
    select *, sum(day_amount) over (partition by document_channel, document_id order by posted_on
                                    rows between unbounded preceding and current row) as balance
    from ar_days
),

sweeps as (
    select r.*, o.currency as doc_currency, o.order_number,
           r.balance - coalesce(lag(r.balance) over (partition by r.document_channel, r.document_id order by r.posted_on), 0) as sweep
    from ar_running as r
    join orders as o on o.channel = r.document_channel and o.order_id = r.document_id
    where abs(r.balance) < {{ limit }}
),

sweep_lines as (
    select 'settlement_difference:' || document_channel || ':' || document_id || ':' || cast(posted_on as varchar) as entry_id,
           'settlement_difference' as source_type, document_id as source_id, document_channel as channel, posted_at,
           '{{ home }}' as currency, document_channel, document_id, null as jurisdiction, 1 as seq, '1200' as account_code,
           -sweep as amount_home, cast(null as decimal(18, 2)) as amount, 'Settlement difference on order ' || coalesce(order_number, document_id) as description
    from sweeps where sweep <> 0
    union all
    select 'settlement_difference:' || document_channel || ':' || document_id || ':' || cast(posted_on as varchar),
           'settlement_difference', document_id, document_channel, posted_at, '{{ home }}', null, null, null, 2,
           case when doc_currency = '{{ home }}' then '7900' else '7100' end, sweep, null,
           case when doc_currency = '{{ home }}' then 'Rounding' else 'FX on conversion of the order''s components' end
    from sweeps where sweep <> 0
),

{#- Balance movements in GBP: a channel whose balance is held in another currency gives
    amount_home / fee_home on int_balance_transactions (and amount_home on int_payouts). -#}
bts as (
    select {{ star_exclude(ref('int_balance_transactions'), 'b', ['amount', 'fee']) }}, a.clearing_account, a.fees_account,
           {{ optional_column(ref('int_balance_transactions'), 'amount_home', 'b.amount', 'amount') }},
           {{ optional_column(ref('int_balance_transactions'), 'fee_home', 'b.fee', 'fee') }}
    from {{ ref('int_balance_transactions') }} as b
    join {{ ref('int_gl_channel_accounts') }} as a using (channel)
),

fee_lines as (
    select 'fee:' || channel || ':' || balance_transaction_id as entry_id, 'fee' as source_type,
           balance_transaction_id as source_id, channel, occurred_at as posted_at, currency,
           null as document_channel, null as document_id, null as jurisdiction, 1 as seq,
           fees_account as account_code, fee as amount_home, fee as amount,
           'Fee on ' || type || coalesce(' (' || category || ')', '') as description
    from bts where fee <> 0
    union all
    select 'fee:' || channel || ':' || balance_transaction_id, 'fee', balance_transaction_id, channel, occurred_at, currency,
           null, null, null, 2, clearing_account, -fee, -fee, 'Fee deducted by ' || channel
    from bts where fee <> 0
),

{#- Balance movements that are neither settlements (payments, refunds) nor payouts. -#}
other_bts as (
    select b.*,
           case when b.category = 'dispute' then 'dispute'
                when b.category = 'dispute_reversal' then 'dispute_reversal'
                else 'adjustment' end as kind
    from bts as b
    where b.type <> 'payout'
      and not exists (select 1 from {{ ref('int_gl_settlements') }} as s
                      where s.channel = b.channel and s.balance_transaction_id = b.balance_transaction_id)
),

withdrawals as (
    select channel, source_id, sum(amount) as withdrawn, min(occurred_at) as withdrawn_at
    from other_bts where kind = 'dispute'
    group by channel, source_id
),

dispute_outcomes as (
    {%- if 'stripe' in var('channels') %}
    select 'stripe' as channel, dispute_id as source_id, max(status) as status
    from {{ ref('stg_stripe__disputes') }}
    group by dispute_id
    {%- else %}
    select cast(null as varchar) as channel, cast(null as varchar) as source_id, cast(null as varchar) as status where false
    {%- endif %}
),

other_lines as (
    select kind || ':' || channel || ':' || balance_transaction_id as entry_id, kind as source_type,
           balance_transaction_id as source_id, channel, occurred_at as posted_at, currency,
           null as document_channel, null as document_id, null as jurisdiction, 1 as seq,
           clearing_account as account_code, amount as amount_home, amount,
           case kind when 'dispute' then 'Disputed funds withdrawn' when 'dispute_reversal' then 'Disputed funds returned'
                else 'Processor adjustment (' || type || ')' end as description
    from other_bts
    union all
    select kind || ':' || channel || ':' || balance_transaction_id, kind, balance_transaction_id, channel, occurred_at, currency,
           null, null, null, 2, case when kind = 'adjustment' then '6900' else '1400' end,
           case when kind = 'dispute_reversal' then coalesce(w.withdrawn, -amount) else -amount end, null,
           case kind when 'dispute' then 'Dispute ' || o.source_id || ' receivable' when 'dispute_reversal' then 'Dispute ' || o.source_id || ' won'
                else 'Processor adjustment' end
    from other_bts as o
    left join withdrawals as w using (channel, source_id)
    union all
    select kind || ':' || channel || ':' || balance_transaction_id, kind, balance_transaction_id, channel, occurred_at, currency,
           null, null, null, 3, '7100', -(amount + coalesce(w.withdrawn, -amount)), null, 'Realised FX on returned dispute funds'
    from other_bts as o
    left join withdrawals as w using (channel, source_id)
    where kind = 'dispute_reversal'
),

lost_lines as (
    select 'dispute_lost:' || w.channel || ':' || w.source_id as entry_id, 'dispute_lost' as source_type,
           w.source_id, w.channel, w.withdrawn_at as posted_at, '{{ home }}' as currency, null as document_channel,
           null as document_id, null as jurisdiction, 1 as seq, '6200' as account_code, -w.withdrawn as amount_home,
           -w.withdrawn as amount, 'Chargeback lost: dispute ' || w.source_id as description
    from withdrawals as w join dispute_outcomes as d using (channel, source_id)
    where d.status = 'lost'
    union all
    select 'dispute_lost:' || w.channel || ':' || w.source_id, 'dispute_lost', w.source_id, w.channel, w.withdrawn_at,
           '{{ home }}', null, null, null, 2, '1400', w.withdrawn, w.withdrawn, 'Dispute receivable written off'
    from withdrawals as w join dispute_outcomes as d using (channel, source_id)
    where d.status = 'lost'
),

payouts as (
    select {{ star_exclude(ref('int_payouts'), 'p', ['amount']) }}, a.clearing_account,
           timezone('{{ var("business_timezone") }}', cast(p.payout_date as timestamp)) as posted_at,
           {{ optional_column(ref('int_payouts'), 'amount_home', 'p.amount', 'amount') }}
    from {{ ref('int_payouts') }} as p
    join {{ ref('int_gl_channel_accounts') }} as a using (channel)
    where p.status = 'paid'
),

payout_lines as (
    select 'payout:' || channel || ':' || payout_id as entry_id, 'payout' as source_type, payout_id as source_id, channel,
           posted_at, currency, null as document_channel, null as document_id, null as jurisdiction, 1 as seq,
           '1100' as account_code, amount as amount_home, amount, 'Payout from ' || channel as description
    from payouts
    union all
    select 'payout:' || channel || ':' || payout_id, 'payout', payout_id, channel, posted_at, currency, null, null, null, 2,
           clearing_account, -amount, -amount, 'Payout ' || payout_id
    from payouts
),

all_lines as (
    select * from order_lines
    union all select * from refund_lines
    union all select * from settlement_lines
    union all select * from sweep_lines
    union all select * from fee_lines
    union all select * from other_lines
    union all select * from lost_lines
    union all select * from payout_lines
)

select
    l.entry_id,
    cast(row_number() over (partition by l.entry_id order by l.seq) as integer) as line_number,
    case when l.source_type = 'payout' then cast(timezone('{{ var("business_timezone") }}', l.posted_at) as date)
         else {{ business_date('l.posted_at') }} end as posted_on,
    l.posted_at,
    l.account_code,
    a.account_name,
    a.account_type,
    cast(greatest(l.amount_home, 0) as decimal(18, 2)) as debit_home,
    cast(greatest(-l.amount_home, 0) as decimal(18, 2)) as credit_home,
    cast(l.amount_home as decimal(18, 2)) as amount_home,
    l.currency,
    cast(l.amount as decimal(18, 2)) as amount,
    l.source_type,
    cast(l.source_id as varchar) as source_id,
    l.channel,
    l.document_channel,
    cast(l.document_id as varchar) as document_id,
    l.jurisdiction,
    l.description
from all_lines as l
left join {{ ref('gl_accounts') }} as a on cast(a.account_code as varchar) = l.account_code
where l.amount_home <> 0
