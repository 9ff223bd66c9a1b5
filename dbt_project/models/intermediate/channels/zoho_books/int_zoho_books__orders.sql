{{ config(enabled=('zoho_books' in var('channels'))) }}
{#- The EU trade desk's invoices raised in Zoho Books, in the channel shape: one order per invoice,
    a trade sale on the customer's terms, `customer_id` = the contact's customer number (the
    business's master account number).  Home amounts are GBP at the invoice's own exchange rate,
    each rounded on its own.  A voided invoice is void.  Invoices the pipeline published to Zoho
    Books (numbers `INV-…`, from the marts) are another channel's sales and are left out. -#}
select
    'zoho_books' as channel,
    i.invoice_id as order_id,
    i.invoice_number as order_number,
    coalesce(c.customer_number, i.contact_id) as customer_id,
    i.customer_email,
    i.customer_name as customer_company,
    'trade' as customer_type,
    i.currency,
    i.created_at as ordered_at,
    i.updated_at,
    cast(case when i.is_void then i.updated_at end as timestamptz) as cancelled_at,
    i.status as platform_status,
    i.is_void,
    i.taxes_included,
    case i.vat_treatment
        when 'eu_vat_registered' then 'eu_reverse_charge'
        when 'eu_vat_not_registered' then 'eu_oss_vat'
        when 'uk' then 'uk_vat'
        else case when coalesce(i.country, c.country) = 'US' then 'us_resale_exempt' else 'export_zero_rated' end
    end as tax_treatment,
    coalesce(i.country, c.country) as country,
    cast(null as varchar) as region,
    i.terms_days,
    i.due_on,
    i.shipping_amount,
    cast(i.shipping_amount * i.fx_rate as decimal(18, 2)) as shipping_amount_home,
    i.shipping_tax,
    cast(i.shipping_tax * i.fx_rate as decimal(18, 2)) as shipping_tax_home
from {{ ref('stg_zoho_books__invoices') }} as i
left join {{ ref('stg_zoho_books__contacts') }} as c using (contact_id)
where not i.is_published
