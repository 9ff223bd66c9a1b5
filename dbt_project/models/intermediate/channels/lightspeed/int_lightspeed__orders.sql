{{ config(enabled=('lightspeed' in var('channels'))) }}
{#- Lightspeed sales in the channel shape (return tickets are refunds).  A voided ticket carries
    no revenue. -#}
select
    'lightspeed' as channel,
    s.sale_id as order_id,
    s.ticket_number as order_number,
    s.customer_id,
    cast(null as varchar) as customer_email,
    cast(null as varchar) as customer_company,
    'retail' as customer_type,
    s.currency,
    s.created_at as ordered_at,
    s.updated_at,
    case when s.voided then s.updated_at end as cancelled_at,
    case when s.voided then 'voided' when s.completed then 'completed' else 'open' end as platform_status,
    coalesce(s.voided, false) as is_void,
    s.is_tax_inclusive as taxes_included,
    'uk_vat' as tax_treatment,
    'GB' as country,
    cast(null as varchar) as region,
    cast(null as integer) as terms_days,
    cast(null as date) as due_on,
    cast(0 as decimal(18, 2)) as shipping_amount,
    cast(0 as decimal(18, 2)) as shipping_amount_home,
    cast(0 as decimal(18, 2)) as shipping_tax,
    cast(0 as decimal(18, 2)) as shipping_tax_home
from {{ ref('stg_lightspeed__sales') }} as s
where not s.is_return
