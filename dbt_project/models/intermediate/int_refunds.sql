{#- Every refund from every channel, tax-exclusive: goods, shipping and tax refunded, in the
    order's currency and in home currency, plus the cost of goods put back in stock
    (restocked lines reverse their COGS at the original unit cost; scenario C2). -#}
select
    channel,
    refund_id,
    order_id,
    refunded_at,
    currency,
    cast(goods_amount as decimal(18, 2)) as goods_amount,
    cast(shipping_amount as decimal(18, 2)) as shipping_amount,
    cast(tax_amount as decimal(18, 2)) as tax_amount,
    cast(goods_amount + shipping_amount + tax_amount as decimal(18, 2)) as total_amount,
    cast(goods_amount_home as decimal(18, 2)) as goods_amount_home,
    cast(shipping_amount_home as decimal(18, 2)) as shipping_amount_home,
    cast(tax_amount_home as decimal(18, 2)) as tax_amount_home,
    cast(goods_amount_home + shipping_amount_home + tax_amount_home as decimal(18, 2)) as total_amount_home,
    cast(cogs_reversal_home as decimal(18, 2)) as cogs_reversal_home,
    units,
    restock,
    note,
    cast(coalesce(marketplace_tax_amount, 0) as decimal(18, 2)) as marketplace_tax_amount,
    cast(coalesce(marketplace_tax_amount_home, 0) as decimal(18, 2)) as marketplace_tax_amount_home,
    paid_back_by,
    payment_id
from (
    -- a channel may give the tax its marketplace collects and remits itself; 0 where none does.
    -- paid_back_by / payment_id: a refund paid back outside any processor balance the pipeline
    -- sees (cash from a till, a card processor without balance transactions) names who paid it
    -- back and the payment it gives back; the GL settles it from there (int_gl_settlements)
    {{ union_channels_with('refunds', [('marketplace_tax_amount', 'decimal(18, 2)'),
                                       ('marketplace_tax_amount_home', 'decimal(18, 2)'),
                                       ('paid_back_by', 'varchar'), ('payment_id', 'varchar')]) }}
) as r
