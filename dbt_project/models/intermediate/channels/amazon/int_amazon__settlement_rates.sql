{{ config(enabled=('amazon' in var('channels', {}))) }}
{#- Amazon's own conversion of marketplace money to home currency: for each closed settlement
    (financial event group) paid in home currency, ConvertedTotal / OriginalTotal.  Money of a
    moment converts at the latest closed settlement of its currency that started at or before it
    (the settlement covering it once that has closed, the one before until then). -#}
select
    currency,
    started_at,
    group_id,
    original_total,
    converted_total,
    -- the ratio as two positive numbers (a settlement can be negative: Amazon then charges the seller)
    abs(converted_total) as rate_num,
    abs(original_total) as rate_den
from {{ ref('stg_amazon__financial_event_groups') }}
where processing_status = 'Closed'
  and original_total <> 0
  and converted_total is not null
  and converted_currency = '{{ var("home_currency") }}'
