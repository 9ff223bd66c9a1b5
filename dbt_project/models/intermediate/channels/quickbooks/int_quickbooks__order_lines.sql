{{ config(enabled=('quickbooks' in var('channels'))) }}
{#- Goods lines of the trade counter's invoices and sales receipts (the `Shipping` item lines are the
    order's shipping): ex-VAT prices, list amount = Qty × UnitPrice (what QBO holds as the line's
    Amount; a voided document keeps Qty and UnitPrice), VAT per line at its code's rate; home
    amounts at the document's exchange rate. -#}
with docs as (
    select 'invoice' as document_type, invoice_id as order_id, currency, exchange_rate, created_at, is_published
    from {{ ref('stg_quickbooks__invoices') }}
    union all
    select 'sales_receipt', sales_receipt_id, currency, exchange_rate, created_at, is_published
    from {{ ref('stg_quickbooks__sales_receipts') }}
),

lines as (
    select l.*, d.currency, d.exchange_rate, d.created_at,
           cast(l.quantity * l.unit_price as decimal(18, 2)) as list_amount
    from {{ ref('stg_quickbooks__lines') }} as l
    join docs as d on d.document_type = l.document_type and d.order_id = l.document_id
    where not d.is_published and l.detail_type = 'SalesItemLineDetail' and coalesce(l.item_name, '') <> 'Shipping'
)

select
    'quickbooks' as channel,
    document_id as order_id,
    document_id || '-' || line_id as line_id,
    sku,
    title,
    cast(null as varchar) as variant_title,
    cast(quantity as integer) as quantity,
    cast(unit_price as decimal(18, 2)) as unit_price,
    currency,
    created_at as ordered_at,
    false as taxes_included,
    'trade' as customer_type,
    tax_rate,
    list_amount,
    cast(list_amount * exchange_rate as decimal(18, 2)) as list_amount_home,
    cast(0 as decimal(18, 2)) as discount,
    cast(0 as decimal(18, 2)) as discount_home,
    cast(list_amount * tax_rate as decimal(18, 2)) as tax_amount,
    cast(cast(list_amount * tax_rate as decimal(18, 2)) * exchange_rate as decimal(18, 2)) as tax_amount_home
from lines
