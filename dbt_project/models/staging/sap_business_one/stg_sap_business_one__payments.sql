{{ config(enabled=('sap_business_one' in var('channels'))) }}
{#- One row per invoice an incoming payment (a bank transfer) was applied to: the amount in the
    invoice's currency (AppliedFC for a foreign invoice, SumApplied for a GBP one) and in GBP
    (SumApplied: B1's local amount at the payment's own DocRate (the day's rate: the difference against the invoice's rate is realised FX)). -#}
with applied as (
    select p.*, {{ json_rows('p.payment_invoices', '["JSON"]') }} as applied
    from {{ source('sap_business_one', 'incoming_payments') }} as p
    where coalesce(p.cancelled, 'tNO') = 'tNO'
)

select
    cast(doc_entry as varchar)
        || case when cast({{ json_text('applied', '$.LineNum') }} as integer) > 0
                then '-' || {{ json_text('applied', '$.LineNum') }} else '' end as payment_id,
    doc_entry,
    doc_num,
    cast({{ json_text('applied', '$.DocEntry') }} as bigint) as invoice_id,
    card_code as customer_id,
    upper(doc_currency) as currency,
    cast(doc_rate as decimal(18, 6)) as doc_rate,
    transfer_reference,
    timezone('Europe/London', cast(cast(doc_date as date) || ' ' || coalesce(doc_time, '00:00:00') as timestamp))
        as paid_at,
    cast(case when upper(doc_currency) = 'GBP' then {{ json_text('applied', '$.SumApplied') }}
              else {{ json_text('applied', '$.AppliedFC') }} end as decimal(18, 2)) as amount,
    cast({{ json_text('applied', '$.SumApplied') }} as decimal(18, 2)) as amount_home
from applied
