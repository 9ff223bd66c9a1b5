{#- One row per payout from a processor to the bank. -#}
select * from {{ ref('int_payouts') }}
