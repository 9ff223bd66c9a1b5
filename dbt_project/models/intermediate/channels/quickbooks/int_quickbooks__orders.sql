{{ config(enabled=('quickbooks' in var('channels'))) }}
{#- The UK trade counter's own sales in QuickBooks Online, in the channel shape: one order per
    invoice (on the customer's terms) and per sales receipt (paid when raised: terms 0, due the
    day it is dated).  `order_number` = the DocNumber (`QB-10001`, receipts `QBS-10001`), so the
    mart's invoice number is `INV-QB-10001`; `customer_id` = the master account number the
    customer's display name ends with ("Name (C000012)").  Prices are ex VAT; shipping = the
    `Shipping` item lines, its VAT at the line's code.  Home amounts at the document's exchange
    rate.  A voided document is void; deleted ones are gone from the raw tables.  Documents the
    pipeline published to QuickBooks (numbers `INV-…`) are other channels' sales and left out. -#}
with docs as (
    select invoice_id as order_id, doc_number, customer_id as qbo_customer_id, customer_name, customer_number,
           customer_email, country, currency, exchange_rate, issued_on, due_on, is_voided, global_tax_calculation,
           open_amount, total_amount, created_at, updated_at, 'invoice' as document_type
    from {{ ref('stg_quickbooks__invoices') }}
    where not is_published
    union all
    select sales_receipt_id, doc_number, customer_id, customer_name, customer_number, customer_email, country,
           currency, exchange_rate, sold_on, sold_on, is_voided, global_tax_calculation, cast(0 as decimal(18, 2)),
           total_amount, created_at, updated_at, 'sales_receipt'
    from {{ ref('stg_quickbooks__sales_receipts') }}
    where not is_published
),

shipping as (
    select document_type, document_id,
           sum(cast(quantity * unit_price as decimal(18, 2))) as shipping_amount,
           sum(cast(cast(quantity * unit_price as decimal(18, 2)) * tax_rate as decimal(18, 2))) as shipping_tax
    from {{ ref('stg_quickbooks__lines') }}
    where detail_type = 'SalesItemLineDetail' and item_name = 'Shipping'
    group by 1, 2
),

codes as (
    select document_type, document_id, max(tax_code_id) as tax_code_id
    from {{ ref('stg_quickbooks__lines') }}
    where detail_type = 'SalesItemLineDetail' and coalesce(item_name, '') <> 'Shipping'
    group by 1, 2
)

select
    'quickbooks' as channel,
    d.order_id,
    d.doc_number as order_number,
    coalesce(d.customer_number, d.qbo_customer_id) as customer_id,
    d.customer_email,
    coalesce(regexp_replace(d.customer_name, ' \([^()]+\)$', ''), d.customer_name) as customer_company,
    'trade' as customer_type,
    d.currency,
    d.created_at as ordered_at,
    d.updated_at,
    cast(case when d.is_voided then d.updated_at end as timestamptz) as cancelled_at,
    case
        when d.is_voided then 'voided'
        when d.open_amount = 0 then 'paid'
        when d.open_amount < d.total_amount then 'partially_paid'
        else 'open'
    end as platform_status,
    d.is_voided as is_void,
    d.global_tax_calculation = 'TaxInclusive' as taxes_included,
    case
        when c.tax_code_id in ('2', '4') then 'uk_vat'
        when c.tax_code_id = '12' then 'eu_reverse_charge'
        when coalesce(d.country, 'GB') = 'GB' then 'uk_vat'
        when d.country = 'US' then 'us_resale_exempt'
        else 'export_zero_rated'
    end as tax_treatment,
    coalesce(d.country, 'GB') as country,
    cast(null as varchar) as region,
    cast(d.due_on - d.issued_on as integer) as terms_days,
    d.due_on,
    coalesce(s.shipping_amount, 0) as shipping_amount,
    cast(coalesce(s.shipping_amount, 0) * d.exchange_rate as decimal(18, 2)) as shipping_amount_home,
    coalesce(s.shipping_tax, 0) as shipping_tax,
    cast(coalesce(s.shipping_tax, 0) * d.exchange_rate as decimal(18, 2)) as shipping_tax_home
from docs as d
left join shipping as s on s.document_type = d.document_type and s.document_id = d.order_id
left join codes as c on c.document_type = d.document_type and c.document_id = d.order_id
