{{ config(meta={'dagster': {'ref': {'name': 'fct_invoices'}}}) }}
-- Every trade invoice's total equals the sum of its lines plus their tax.
select i.invoice_number, i.total_amount, sum(l.line_amount + l.tax_amount) as lines_total
from {{ ref('fct_invoices') }} as i
join {{ ref('fct_invoice_lines') }} as l using (invoice_number)
group by i.invoice_number, i.total_amount
having i.total_amount <> sum(l.line_amount + l.tax_amount)
