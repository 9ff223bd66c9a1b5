{{ config(enabled=('dynamics365' in var('channels')), materialized='view') }}
{#- Each Business Central invoice with the company's GBP rate of its invoice date (the latest
    rate starting on or before it), used for every home amount of the invoice. -#}
select i.*, r.gbp_per_unit as fx_rate
from {{ ref('stg_dynamics365__invoices') }} as i
{{ asof_left_join(ref('stg_dynamics365__exchange_rates'), 'r', 'i.invoice_date >= r.starting_date', 'r.starting_date desc') }}
