{{ config(enabled=('lightspeed' in var('channels'))) }}
{#- One row per Lightspeed sale (ticket).  A return is a sale whose lines have negative
    quantities.  The Retail API gives no currency per sale: it is the account's setting
    (var lightspeed_currency, GBP for the sandbox's Manchester showroom). -#}
select
    id as sale_id,
    ticket_number,
    shop_id,
    register_id,
    nullif(customer_id, '0') as customer_id,
    completed,
    voided,
    archived,
    coalesce(is_tax_inclusive, false) as is_tax_inclusive,
    cast(tax1_rate as decimal(18, 6)) as tax1_rate,
    cast(calc_subtotal as decimal(18, 2)) as subtotal_amount,
    cast(calc_discount as decimal(18, 2)) as discount_amount,
    cast(calc_tax1 as decimal(18, 2)) + cast(coalesce(nullif(calc_tax2, ''), '0') as decimal(18, 2)) as tax_amount,
    cast(calc_total as decimal(18, 2)) as total_amount,
    cast(calc_payments as decimal(18, 2)) as payments_amount,
    cast(calc_total as decimal(18, 2)) < 0
        or exists (select 1 from {{ json_elements('sale_lines') }} as t(l) where cast(l ->> 'unitQuantity' as decimal(18, 4)) < 0)
        as is_return,
    '{{ var("lightspeed_currency", "GBP") }}' as currency,
    cast(create_time as timestamptz) as created_at,
    cast(complete_time as timestamptz) as completed_at,
    cast(time_stamp as timestamptz) as updated_at,
    'lightspeed' as channel
from {{ source('lightspeed', 'sales') }}
