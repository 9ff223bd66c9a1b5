{#- Profit and loss by business month and channel, in home currency (accrual basis):
    sales and COGS in the month of the order, refunds (and restocked COGS) in the month of the
    refund, processor fees in the month of the balance transaction.
    net_sales = gross_sales - discounts - refunds;  gross_margin = net_sales - cogs;
    contribution = gross_margin + shipping_income - fees. -#}
with sales as (
    select
        channel, {{ business_month('ordered_at') }} as month,
        sum(gross_amount_home) as gross_sales, sum(discount_amount_home) as discounts,
        sum(shipping_amount_home) as shipping_charged, sum(cogs_home) as cogs_sold,
        count(*) as orders
    from {{ ref('int_orders') }}
    where not is_void
    group by 1, 2
),

refunds as (
    select
        r.channel, {{ business_month('r.refunded_at') }} as month,
        sum(r.goods_amount_home) as refunds, sum(r.shipping_amount_home) as shipping_refunded,
        sum(r.cogs_reversal_home) as cogs_reversed
    from {{ ref('int_refunds') }} as r
    group by 1, 2
),

fees as (
    {#- fee_home: a channel settling in another currency (Amazon.com in USD) gives its fees in
        home currency too; the others settle in home currency, so fee is already home. -#}
    select channel, {{ business_month('occurred_at') }} as month, sum(fee_home) as fees
    from (select channel, occurred_at, {{ optional_column(ref('int_balance_transactions'), 'fee_home', 'fee') }}
          from {{ ref('int_balance_transactions') }}) as b
    group by 1, 2
),

gl as (
    select
        channel, cast(date_trunc('month', cast(posted_on as timestamp)) as date) as month,
        -sum(amount_home) filter (where account_code = '7100') as fx_gain_loss,
        -sum(amount_home) filter (where account_code = '7900') as rounding,
        sum(amount_home) filter (where account_code = '6200') as chargeback_losses,
        sum(amount_home) filter (where account_code = '6900') as other_adjustments
    from {{ ref('fct_gl_entries') }}
    where account_code in ('7100', '7900', '6200', '6900')
    group by 1, 2
),

keys as (
    select channel, month from sales
    union select channel, month from refunds
    union select channel, month from fees
    union select channel, month from gl
),

combined as (
    select
        k.channel,
        k.month,
        coalesce(s.orders, 0) as orders,
        coalesce(s.gross_sales, 0) as gross_sales,
        coalesce(s.discounts, 0) as discounts,
        coalesce(r.refunds, 0) as refunds,
        coalesce(s.shipping_charged, 0) - coalesce(r.shipping_refunded, 0) as shipping_income,
        coalesce(s.cogs_sold, 0) - coalesce(r.cogs_reversed, 0) as cogs,
        coalesce(f.fees, 0) as fees,
        coalesce(g.fx_gain_loss, 0) as fx_gain_loss,
        coalesce(g.rounding, 0) as rounding,
        coalesce(g.chargeback_losses, 0) as chargeback_losses,
        coalesce(g.other_adjustments, 0) as other_adjustments
    from keys as k
    left join sales as s using (channel, month)
    left join refunds as r using (channel, month)
    left join fees as f using (channel, month)
    left join gl as g using (channel, month)
)

select
    channel,
    month,
    orders,
    cast(gross_sales as decimal(18, 2)) as gross_sales,
    cast(discounts as decimal(18, 2)) as discounts,
    cast(refunds as decimal(18, 2)) as refunds,
    cast(gross_sales - discounts - refunds as decimal(18, 2)) as net_sales,
    cast(shipping_income as decimal(18, 2)) as shipping_income,
    cast(cogs as decimal(18, 2)) as cogs,
    cast(gross_sales - discounts - refunds - cogs as decimal(18, 2)) as gross_margin,
    cast(fees as decimal(18, 2)) as fees,
    cast(gross_sales - discounts - refunds - cogs + shipping_income - fees as decimal(18, 2)) as contribution,
    cast(fx_gain_loss as decimal(18, 2)) as fx_gain_loss,
    cast(rounding as decimal(18, 2)) as rounding,
    cast(chargeback_losses as decimal(18, 2)) as chargeback_losses,
    cast(other_adjustments as decimal(18, 2)) as other_adjustments,
    cast(gross_sales - discounts - refunds - cogs + shipping_income - fees
         + fx_gain_loss + rounding - chargeback_losses - other_adjustments as decimal(18, 2)) as net_contribution
from combined
