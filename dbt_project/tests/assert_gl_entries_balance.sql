{{ config(meta={'dagster': {'ref': {'name': 'fct_gl_entries'}}}) }}
-- Double entry: every journal entry's debits equal its credits, to the cent.
select entry_id, sum(debit_home) as debits, sum(credit_home) as credits
from {{ ref('fct_gl_entries') }}
group by entry_id
having sum(debit_home) <> sum(credit_home)
