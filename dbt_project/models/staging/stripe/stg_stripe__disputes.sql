{{ config(enabled=('stripe' in var('channels'))) }}
{#- One row per Stripe dispute: needs_response -> under_review -> won | lost. The money moves are
    in its balance transactions (withdrawal with the dispute fee on opening, reinstatement if won). -#}
select
    id as dispute_id,
    charge as charge_id,
    {{ minor_to_major('amount', 'currency') }} as amount,
    upper(currency) as currency,
    status,
    reason,
    cast(created as timestamptz) as created_at,
    'stripe' as channel
from {{ source('stripe', 'disputes') }}
