{#- One row per refund, every channel. -#}
select * from {{ ref('int_refunds') }}
