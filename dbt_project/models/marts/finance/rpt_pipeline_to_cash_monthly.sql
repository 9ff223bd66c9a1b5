{#- Won vs invoiced vs paid per month of the close date, per CRM and currency (closed deals of
    rpt_pipeline_to_cash; money in the deal = invoice currency, and in GBP at the invoices' rates). -#}
{{ config(enabled=('hubspot' in var('sources', ['hubspot']) or 'salesforce' in var('sources', ['salesforce']))) }}
select
    crm,
    cast(date_trunc('month', cast(close_date as timestamp)) as date) as month,
    currency,
    count(*) filter (where is_won) as won_deals,
    cast(coalesce(sum(deal_amount) filter (where is_won), 0) as decimal(18, 2)) as won_amount,
    count(*) filter (where not is_won) as lost_deals,
    cast(coalesce(sum(deal_amount) filter (where not is_won), 0) as decimal(18, 2)) as lost_amount,
    count(*) filter (where pipeline_status = 'won_not_invoiced') as won_not_invoiced_deals,
    cast(sum(invoiced_amount) as decimal(18, 2)) as invoiced_amount,
    cast(sum(paid_amount) as decimal(18, 2)) as paid_amount,
    cast(sum(open_amount) as decimal(18, 2)) as open_amount,
    cast(coalesce(sum(invoiced_amount_home), 0) as decimal(18, 2)) as invoiced_amount_home,
    cast(coalesce(sum(paid_amount_home), 0) as decimal(18, 2)) as paid_amount_home,
    cast(coalesce(sum(open_amount_home), 0) as decimal(18, 2)) as open_amount_home
from {{ ref('rpt_pipeline_to_cash') }}
where is_closed
group by 1, 2, 3
