{#- Trade invoices: one per trade order (net-30 / net-60 terms, scenario S5), with what has
    been paid against it (card payments matched by invoice number, less refunds of them; and
    payments a ledger channel recorded against its own invoices, e.g. bank transfers).
    A trade order cancelled before payment is a voided invoice. -#}
with paid as (
    {%- if 'stripe' in var('channels') %}
    select c.invoice_number, c.status, c.amount, c.created_at as paid_at
    from {{ ref('stg_stripe__charges') }} as c
    where c.invoice_number is not null
    union all
    {%- endif %}
    select p.invoice_number, p.status, p.amount - coalesce(p.refunded_amount, 0) as amount, p.attempted_at as paid_at
    from {{ ref('int_payments') }} as p
    where p.invoice_number is not null and p.channel <> 'stripe'
),

payments as (
    select
        invoice_number,
        sum(case when status = 'succeeded' then amount else 0 end) as charged_amount,
        max(case when status = 'succeeded' then paid_at end) as last_paid_at
    from paid
    group by invoice_number
),

refunds as (
    {%- if 'stripe' in var('channels') %}
    select c.invoice_number, sum(r.amount) as refunded_amount
    from {{ ref('stg_stripe__refunds') }} as r
    join {{ ref('stg_stripe__charges') }} as c using (charge_id)
    where r.status = 'succeeded' and c.invoice_number is not null
    group by c.invoice_number
    {%- else %}
    select cast(null as varchar) as invoice_number, cast(null as decimal(18, 2)) as refunded_amount where false
    {%- endif %}
),

invoices as (
    select
        'INV-' || ltrim(o.order_number, '#') as invoice_number,
        o.channel,
        o.order_id,
        o.order_number,
        o.customer_id,
        coalesce(o.customer_company, o.customer_email) as customer_name,
        o.customer_email,
        o.country as customer_country,
        o.currency,
        {{ business_date('o.ordered_at') }} as issued_on,
        o.due_on,
        o.terms_days,
        o.tax_treatment,
        o.is_void,
        cast(o.gross_amount - o.discount_amount + o.shipping_amount as decimal(18, 2)) as subtotal_amount,
        o.tax_amount,
        o.total_amount,
        o.total_amount_home,
        cast(coalesce(p.charged_amount, 0) - coalesce(r.refunded_amount, 0) as decimal(18, 2)) as paid_amount,
        p.last_paid_at,
        o.updated_at
    from {{ ref('int_orders') }} as o
    left join payments as p on p.invoice_number = 'INV-' || ltrim(o.order_number, '#')
    left join refunds as r on r.invoice_number = 'INV-' || ltrim(o.order_number, '#')
    where o.customer_type = 'trade'
)

select
    invoice_number,
    channel,
    order_id,
    order_number,
    customer_id,
    customer_name,
    customer_email,
    customer_country,
    currency,
    issued_on,
    due_on,
    terms_days,
    tax_treatment,
    subtotal_amount,
    tax_amount,
    total_amount,
    paid_amount,
    cast(case when is_void then 0 else total_amount - paid_amount end as decimal(18, 2)) as open_amount,
    case
        when is_void then 'voided'
        when total_amount - paid_amount < 0 then 'overpaid'
        when total_amount - paid_amount = 0 then 'paid'
        when due_on < {{ as_of_date() }} then 'overdue'
        when paid_amount > 0 then 'partially_paid'
        else 'unpaid'
    end as status,
    total_amount_home,
    case
        when is_void or total_amount = 0 then cast(0 as decimal(18, 2))
        -- what the ledger still holds: the home total less what the payments relieved at the
        -- invoice's own rate (cumulatively, int_gl_settlements), so it ties to the GL to the cent
        else cast(total_amount_home - {{ money_div('paid_amount * total_amount_home', 'total_amount') }} as decimal(18, 2))
    end as open_amount_home,
    greatest(0, {{ as_of_date() }} - due_on) as days_past_due,
    last_paid_at,
    updated_at
from invoices
