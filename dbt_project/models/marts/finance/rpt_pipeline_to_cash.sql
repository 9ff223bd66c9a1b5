{#- Pipeline → invoice → cash: one row per live deal of either CRM (HubSpot deals, Salesforce
    Opportunities), joined to its trade invoice by the invoice number the rep recorded on the deal.
    Deleted deals are left out; a CRM switched off (FINANCE_SOURCES) is left out of the union. -#}
{%- set crms = [] -%}
{%- if 'hubspot' in var('sources', ['hubspot']) -%}{%- do crms.append(('hubspot', 'stg_hubspot__deals')) -%}{%- endif -%}
{%- if 'salesforce' in var('sources', ['salesforce']) -%}
    {%- do crms.append(('salesforce', 'stg_salesforce__opportunities')) -%}
{%- endif -%}
{{ config(enabled=(crms | length > 0)) }}

with deals as (
    {%- for crm, model in crms %}
    select '{{ crm }}' as crm, deal_id, deal_name, customer_id, customer_name, stage, is_won, is_closed,
           close_date, currency, amount as deal_amount, invoice_number, updated_at
    from {{ ref(model) }}
    where not is_deleted
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

joined as (
    select
        d.*,
        i.invoice_number is not null as has_invoice,
        i.status as invoice_status,
        coalesce(i.status = 'voided', false) as is_voided,
        i.total_amount,
        i.paid_amount as invoice_paid_amount,
        i.open_amount as invoice_open_amount,
        i.total_amount_home,
        i.open_amount_home as invoice_open_amount_home
    from deals as d
    left join {{ ref('fct_invoices') }} as i on i.invoice_number = d.invoice_number
),

amounts as (
    select
        *,
        cast(case when has_invoice and not is_voided then total_amount else 0 end as decimal(18, 2)) as invoiced_amount,
        cast(coalesce(invoice_paid_amount, 0) as decimal(18, 2)) as paid_amount,
        cast(coalesce(invoice_open_amount, 0) as decimal(18, 2)) as open_amount
    from joined
)

select
    crm,
    deal_id,
    deal_name,
    customer_id,
    customer_name,
    stage,
    is_won,
    is_closed,
    close_date,
    currency,
    deal_amount,
    invoice_number,
    invoice_status,
    invoiced_amount,
    paid_amount,
    open_amount,
    cast(case when is_won then invoiced_amount - deal_amount end as decimal(18, 2)) as amount_difference,
    case
        when not is_closed then 'open'
        when not is_won then 'lost'
        when not has_invoice then 'won_not_invoiced'
        when is_voided then 'voided'
        when paid_amount >= invoiced_amount then 'paid'
        when paid_amount > 0 then 'partially_paid'
        else 'invoiced_unpaid'
    end as pipeline_status,
    case when has_invoice and not is_voided then cast(total_amount_home as decimal(18, 2)) end as invoiced_amount_home,
    case
        when has_invoice and not is_voided and total_amount <> 0
            then {{ money_div('paid_amount * total_amount_home', 'total_amount') }}
        when has_invoice then cast(0 as decimal(18, 2))
    end as paid_amount_home,
    case when has_invoice then cast(invoice_open_amount_home as decimal(18, 2)) end as open_amount_home,
    updated_at
from amounts
