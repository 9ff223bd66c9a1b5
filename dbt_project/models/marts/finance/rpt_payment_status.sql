{#- Every order and trade invoice with one payment status and the evidence behind it.

    Precedence (first that applies): cancelled (void, P11) > disputed (a dispute still open) >
    refunded (refunds cover the total, or a chargeback was lost, P7) > partially_refunded >
    for trade invoices: paid (incl. overpaid) / overdue / partially_paid / failed (only failed
    attempts so far, P3) / unpaid;  for orders paid at checkout: paid / failed / unpaid. -#}
with docs as (
    select
        o.channel, o.order_id, o.order_number, o.customer_id, o.customer_type, o.currency, o.ordered_at,
        o.is_void, o.total_amount, o.total_amount_home, o.due_on,
        cast(o.refunded_amount + o.refunded_shipping_amount + o.refunded_tax_amount as decimal(18, 2)) as refunded_total,
        i.invoice_number, i.status as invoice_status, i.paid_amount as invoice_paid_amount, i.open_amount
    from {{ ref('int_orders') }} as o
    left join {{ ref('fct_invoices') }} as i on i.channel = o.channel and i.order_id = o.order_id
),

attempts as (
    select
        p.channel as processor_channel, p.payment_id, p.status, p.attempted_at, p.amount_home,
        p.is_disputed, p.dispute_status,
        coalesce(i.channel, o.channel) as doc_channel,
        coalesce(i.order_id, o.order_id) as doc_order_id
    from {{ ref('int_payments') }} as p
    left join {{ ref('fct_invoices') }} as i on i.invoice_number = p.invoice_number
    left join {{ ref('int_orders') }} as o
        on i.invoice_number is null and o.channel = p.channel and o.order_id = p.order_id
    union all
    -- marketplaces without payment objects: the settlement lines that paid the order are the evidence
    select channel, balance_transaction_id, 'succeeded', occurred_at, amount_home, false, null, doc_channel, doc_order_id
    from {{ ref('int_gl_settlements') }}
    where source_type = 'payment' and payment_id is null
),

by_doc as (
    select
        doc_channel as channel, doc_order_id as order_id,
        count(*) filter (where status = 'succeeded') as succeeded_count,
        count(*) filter (where status = 'failed') as failed_count,
        string_agg(payment_id, ', ' order by attempted_at, payment_id) filter (where status = 'succeeded') as payment_ids,
        string_agg(payment_id, ', ' order by attempted_at, payment_id) filter (where status = 'failed') as failed_payment_ids,
        max(attempted_at) filter (where status = 'succeeded') as last_payment_at,
        {{ arg_max_of('status', 'attempted_at') }} as last_attempt_status,
        sum(amount_home) filter (where status = 'succeeded') as paid_home,
        bool_or(is_disputed and coalesce(dispute_status, '') not in ('won', 'lost', 'charge_refunded')) as open_dispute,
        bool_or(is_disputed and dispute_status = 'lost') as lost_dispute,
        string_agg(payment_id || ' (' || coalesce(dispute_status, 'open') || ')', ', ') filter (where is_disputed) as disputed_payment_ids
    from attempts
    where doc_order_id is not null
    group by doc_channel, doc_order_id
),

refunds_by_doc as (
    select channel, order_id, string_agg(refund_id, ', ' order by refunded_at, refund_id) as refund_ids,
           max(refunded_at) as last_refund_at
    from {{ ref('int_refunds') }}
    group by channel, order_id
),

classified as (
    select
        d.*,
        coalesce(b.succeeded_count, 0) as succeeded_count,
        coalesce(b.failed_count, 0) as failed_count,
        b.payment_ids, b.failed_payment_ids, b.disputed_payment_ids, b.last_payment_at, b.last_attempt_status,
        cast(coalesce(b.paid_home, 0) as decimal(18, 2)) as paid_amount_home,
        r.refund_ids, r.last_refund_at,
        case
            when d.is_void then 'cancelled'
            when coalesce(b.open_dispute, false) then 'disputed'
            when coalesce(b.lost_dispute, false) then 'refunded'
            when d.refunded_total > 0 and d.refunded_total >= d.total_amount then 'refunded'
            when d.refunded_total > 0 then 'partially_refunded'
            when d.invoice_number is not null then
                case
                    when d.invoice_status in ('paid', 'overpaid') then 'paid'
                    when d.invoice_status = 'overdue' then 'overdue'
                    when d.invoice_status = 'partially_paid' then 'partially_paid'
                    when coalesce(b.failed_count, 0) > 0 then 'failed'
                    else 'unpaid'
                end
            when coalesce(b.succeeded_count, 0) > 0 then 'paid'
            when coalesce(b.failed_count, 0) > 0 then 'failed'
            else 'unpaid'
        end as payment_status
    from docs as d
    left join by_doc as b using (channel, order_id)
    left join refunds_by_doc as r using (channel, order_id)
)

select
    channel,
    order_id,
    order_number,
    invoice_number,
    case when invoice_number is not null then 'invoice' else 'order' end as document_type,
    customer_id,
    customer_type,
    currency,
    ordered_at,
    due_on,
    total_amount,
    total_amount_home,
    refunded_total as refunded_amount,
    invoice_paid_amount,
    open_amount,
    paid_amount_home,
    succeeded_count as payment_count,
    failed_count as failed_attempt_count,
    payment_status,
    payment_ids,
    failed_payment_ids,
    refund_ids,
    disputed_payment_ids,
    last_payment_at,
    concat_ws('; ',
        case when is_void then 'cancelled before payment' end,
        case when payment_ids is not null then 'paid by ' || payment_ids end,
        case when failed_payment_ids is not null then 'failed attempts ' || failed_payment_ids end,
        case when refund_ids is not null then 'refunded by ' || refund_ids end,
        case when disputed_payment_ids is not null then 'disputed ' || disputed_payment_ids end,
        case when invoice_number is not null and not is_void then 'invoice ' || invoice_status end
    ) as evidence
from classified
