{{ config(severity='warn', enabled=('ecb' in var('sources', ['ecb'])),
          meta={'dagster': {'ref': {'name': 'rpt_fx_rate_check'}}}) }}
-- Foreign transactions a platform converted at a rate further from the day's ECB reference rate than
-- var fx_divergence_tolerance_pct: a warning for the bookkeeper (a wrong currency setting, a stale
-- rate table in the platform), never a failed run.
select channel, kind, transaction_id, currency, transaction_date, implied_gbp_per_unit, ecb_gbp_per_unit,
       divergence_pct
from {{ ref('rpt_fx_rate_check') }}
where is_divergent
