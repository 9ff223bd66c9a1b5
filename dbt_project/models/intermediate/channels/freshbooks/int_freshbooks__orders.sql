{{ config(enabled=('freshbooks' in var('channels'))) }}
{#- FreshBooks trade invoices (the making-up and fitting service) in the channel shape: one order
    per invoice, order number 'FB-' || invoice number (so the mart's invoice number is
    'INV-FB-…'), customer id = the master account number kept on the FreshBooks client.  A
    deleted invoice is void.  No delivery charge.  Home amounts at the sterling rate the invoice
    states (the world's rate of its date).  Tax treatment from the client's country under the
    trade rules (UK VAT; EU reverse charge; US resale exemption; elsewhere export zero-rated). -#}
{%- set eu = "'AT','BE','BG','HR','CY','CZ','DK','EE','FI','FR','DE','GR','HU','IE','IT','LV','LT','LU','MT','NL','PL','PT','RO','SK','SI','ES','SE'" -%}
select
    'freshbooks' as channel,
    cast(i.invoice_id as varchar) as order_id,
    i.order_number,
    coalesce(c.customer_number, 'fb-' || cast(i.client_id as varchar)) as customer_id,
    c.email as customer_email,
    coalesce(i.organization, c.organization) as customer_company,
    'trade' as customer_type,
    i.currency,
    i.created_at as ordered_at,
    i.updated_at,
    cast(case when i.is_deleted then i.updated_at end as timestamptz) as cancelled_at,
    case when i.is_deleted then 'deleted' else i.v3_status end as platform_status,
    i.is_deleted as is_void,
    false as taxes_included,
    case when coalesce(i.country, c.country) = 'GB' then 'uk_vat'
         when coalesce(i.country, c.country) in ({{ eu }}) then 'eu_reverse_charge'
         when coalesce(i.country, c.country) = 'US' then 'us_resale_exempt'
         else 'export_zero_rated' end as tax_treatment,
    coalesce(i.country, c.country) as country,
    cast(null as varchar) as region,
    i.terms_days,
    i.due_on,
    cast(0 as decimal(18, 2)) as shipping_amount,
    cast(0 as decimal(18, 2)) as shipping_amount_home,
    cast(0 as decimal(18, 2)) as shipping_tax,
    cast(0 as decimal(18, 2)) as shipping_tax_home
from {{ ref('stg_freshbooks__invoices') }} as i
left join {{ ref('stg_freshbooks__clients') }} as c using (client_id)
