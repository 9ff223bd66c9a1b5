{{ config(meta={'dagster': {'ref': {'name': 'fct_gl_entries'}}}) }}
-- The ledger balances on every posting day: the day's debits equal its credits.
select posted_on, sum(debit_home) as debits, sum(credit_home) as credits
from {{ ref('fct_gl_entries') }}
group by posted_on
having sum(debit_home) <> sum(credit_home)
