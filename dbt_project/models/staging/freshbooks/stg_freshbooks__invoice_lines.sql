{{ config(enabled=('freshbooks' in var('channels'))) }}
{#- Invoice lines, unnested from the invoice's `lines` JSON.  Tax per line: amount x percent / 100
    for each of FreshBooks' two taxes, rounded to the cent (FreshBooks computes it so). -#}
with lines as (
    select
        i.invoice_id,
        i.currency,
        unnest(from_json(i.lines, '[{"lineid": "BIGINT", "name": "VARCHAR", "description": "VARCHAR",
                                     "qty": "VARCHAR", "unit_cost": {"amount": "VARCHAR"},
                                     "amount": {"amount": "VARCHAR"}, "taxName1": "VARCHAR",
                                     "taxAmount1": "VARCHAR", "taxName2": "VARCHAR",
                                     "taxAmount2": "VARCHAR"}]')) as l
    from {{ ref('stg_freshbooks__invoices') }} as i
),

typed as (
    select
        invoice_id,
        currency,
        l.lineid as position,
        l.name,
        nullif(l.description, '') as description,
        cast(l.qty as decimal(18, 4)) as quantity,
        cast(l.unit_cost.amount as decimal(18, 2)) as unit_cost,
        cast(l.amount.amount as decimal(18, 2)) as amount,
        nullif(l.taxName1, '') as tax_name1,
        cast(coalesce(nullif(l.taxAmount1, ''), '0') as decimal(12, 6)) as tax_percent1,
        nullif(l.taxName2, '') as tax_name2,
        cast(coalesce(nullif(l.taxAmount2, ''), '0') as decimal(12, 6)) as tax_percent2
    from lines
)

select
    cast(invoice_id as varchar) || '-' || cast(position as varchar) as line_id,
    invoice_id,
    position,
    name,
    description,
    -- catalogue goods carry their SKU as the line description; services have none
    case when regexp_full_match(coalesce(description, ''), '[A-Z0-9]+(-[A-Z0-9]+)+') then description end as sku,
    quantity,
    unit_cost,
    amount,
    currency,
    tax_name1,
    tax_percent1,
    tax_name2,
    tax_percent2,
    cast((tax_percent1 + tax_percent2) / 100 as decimal(12, 6)) as tax_rate,
    cast(round(amount * tax_percent1 / 100, 2) + round(amount * tax_percent2 / 100, 2) as decimal(18, 2)) as tax_amount,
    'freshbooks' as channel
from typed
