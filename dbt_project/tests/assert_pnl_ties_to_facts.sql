{{ config(meta={'dagster': {'ref': {'name': 'rpt_profit_and_loss'}}}) }}
-- P&L totals tie to the facts they summarise: sales to order lines, refunds to refunds,
-- fees to balance transactions (in GBP: fee_home where a channel settles in another currency).
with pnl as (
    select sum(gross_sales) as gross, sum(discounts) as discounts, sum(refunds) as refunds, sum(fees) as fees
    from {{ ref('rpt_profit_and_loss') }}
),
facts as (
    select
        (select coalesce(sum(gross_amount_home), 0) from {{ ref('fct_order_lines') }} where not is_void) as gross,
        (select coalesce(sum(discount_amount_home), 0) from {{ ref('fct_order_lines') }} where not is_void) as discounts,
        (select coalesce(sum(goods_amount_home), 0) from {{ ref('fct_refunds') }}) as refunds,
        (select coalesce(sum({{ optional_column(ref('int_balance_transactions'), 'fee_home', 'fee', bare=true) }}), 0)
         from {{ ref('int_balance_transactions') }}) as fees
)
select * from pnl, facts
where pnl.gross <> facts.gross or pnl.discounts <> facts.discounts
   or pnl.refunds <> facts.refunds or pnl.fees <> facts.fees
