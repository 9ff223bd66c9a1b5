{{ config(enabled=('freshbooks' in var('channels'))) }}
{#- Invoice lines, unnested from the invoice's `lines` JSON.  Tax per line: amount x percent / 100
    for each of FreshBooks' two taxes, rounded to the cent (FreshBooks computes it so). -#}
with lines as (
    select
        i.invoice_id,
        i.currency,
        {{ json_rows('i.lines', '[{"lineid": "BIGINT", "name": "VARCHAR", "description": "VARCHAR",
                                     "qty": "VARCHAR", "unit_cost": {"amount": "VARCHAR"},
                                     "amount": {"amount": "VARCHAR"}, "taxName1": "VARCHAR",
                                     "taxAmount1": "VARCHAR", "taxName2": "VARCHAR",
                                     "taxAmount2": "VARCHAR"}]') }} as l
    from {{ ref('stg_freshbooks__invoices') }} as i
),

typed as (
    select
        invoice_id,
        currency,
        cast({{ jget('l', 'lineid') }} as bigint) as position,
        cast({{ jget('l', 'name') }} as varchar) as name,
        nullif(cast({{ jget('l', 'description') }} as varchar), '') as description,
        cast({{ jget('l', 'qty') }} as decimal(18, 4)) as quantity,
        cast({{ jget('l', 'unit_cost.amount') }} as decimal(18, 2)) as unit_cost,
        cast({{ jget('l', 'amount.amount') }} as decimal(18, 2)) as amount,
        nullif(cast({{ jget('l', 'taxName1') }} as varchar), '') as tax_name1,
        cast(coalesce(nullif(cast({{ jget('l', 'taxAmount1') }} as varchar), ''), '0') as decimal(12, 6)) as tax_percent1,
        nullif(cast({{ jget('l', 'taxName2') }} as varchar), '') as tax_name2,
        cast(coalesce(nullif(cast({{ jget('l', 'taxAmount2') }} as varchar), ''), '0') as decimal(12, 6)) as tax_percent2
    from lines
)

select
    cast(invoice_id as varchar) || '-' || cast(position as varchar) as line_id,
    invoice_id,
    position,
    name,
    description,
    -- catalogue goods carry their SKU as the line description; services have none
    case when {{ regex_full_match("coalesce(description, '')", '[A-Z0-9]+(-[A-Z0-9]+)+') }} then description end as sku,
    quantity,
    unit_cost,
    amount,
    currency,
    tax_name1,
    tax_percent1,
    tax_name2,
    tax_percent2,
    cast((tax_percent1 + tax_percent2) / 100 as decimal(12, 6)) as tax_rate,
    cast({{ round_double('cast(amount * tax_percent1 as double precision) / 100', 2) }}
         + {{ round_double('cast(amount * tax_percent2 as double precision) / 100', 2) }} as decimal(18, 2)) as tax_amount,
    'freshbooks' as channel
from typed
