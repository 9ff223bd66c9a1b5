{{ config(enabled=('sap_business_one' in var('channels'))) }}
{#- SAP Business One A/R invoices as trade orders: order_number = 'SB1-' || DocNum (so the invoice
    number 'INV-SB1-…' is unique across channels), the customer number B1 keeps as CardCode, terms
    from the due date, a cancelled invoice void.  Home amounts are B1's own (local currency GBP at the
    document's DocRate).  Trade prices exclude tax; the warehouse charges no freight on invoices. -#}
with treatments as (
    select invoice_id, min(vat_group) as vat_group
    from {{ ref('stg_sap_business_one__invoice_lines') }}
    group by invoice_id
)

select
    'sap_business_one' as channel,
    cast(i.invoice_id as varchar) as order_id,
    i.invoice_number as order_number,
    i.customer_id,
    cast(null as varchar) as customer_email,
    i.customer_company,
    'trade' as customer_type,
    i.currency,
    i.ordered_at,
    i.updated_at,
    case when i.is_cancelled then i.updated_at end as cancelled_at,
    case when i.is_cancelled then 'cancelled' when i.document_status = 'bost_Close' then 'closed'
         else 'open' end as platform_status,
    i.is_cancelled as is_void,
    false as taxes_included,
    case t.vat_group when 'O1' then 'uk_vat' when 'O2' then 'uk_vat' when 'EC' then 'eu_reverse_charge'
         when 'OX' then 'export_zero_rated'
         else case when i.country = 'GB' then 'uk_vat' else 'export_zero_rated' end end as tax_treatment,
    i.country,
    i.region,
    cast(i.due_on - i.doc_date as integer) as terms_days,
    i.due_on,
    cast(0 as decimal(18, 2)) as shipping_amount,
    cast(0 as decimal(18, 2)) as shipping_amount_home,
    cast(0 as decimal(18, 2)) as shipping_tax,
    cast(0 as decimal(18, 2)) as shipping_tax_home
from {{ ref('stg_sap_business_one__invoices') }} as i
left join treatments as t using (invoice_id)
