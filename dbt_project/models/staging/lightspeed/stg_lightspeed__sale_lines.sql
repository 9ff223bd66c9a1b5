{{ config(enabled=('lightspeed' in var('channels'))) }}
{#- One row per sale line: unit price, discount, subtotal and total as rung up (VAT-inclusive
    when the line is tax-inclusive), tax1 + tax2, the SKU of the loaded Item; return lines carry
    negative quantities and amounts and name the sold line in parent_sale_line_id. -#}
select
    s.id as sale_id,
    l ->> 'saleLineID' as sale_line_id,
    l ->> 'itemID' as item_id,
    nullif(l -> 'Item' ->> 'customSku', '') as sku,
    l -> 'Item' ->> 'description' as description,
    cast(l ->> 'unitQuantity' as integer) as quantity,
    cast(l ->> 'unitPrice' as decimal(18, 2)) as unit_price,
    cast(l ->> 'calcLineDiscount' as decimal(18, 2)) as discount,
    cast(l ->> 'calcSubtotal' as decimal(18, 2)) as subtotal,
    cast(l ->> 'calcTotal' as decimal(18, 2)) as total,
    cast(l ->> 'calcTax1' as decimal(18, 2)) + cast(coalesce(nullif(l ->> 'calcTax2', ''), '0') as decimal(18, 2)) as tax,
    cast(l ->> 'tax1Rate' as decimal(18, 6)) + cast(coalesce(nullif(l ->> 'tax2Rate', ''), '0') as decimal(18, 6)) as tax_rate,
    coalesce(l ->> 'isTaxInclusive', 'false') = 'true' as is_tax_inclusive,
    nullif(l ->> 'parentSaleLineID', '0') as parent_sale_line_id,
    cast(l ->> 'createTime' as timestamptz) as created_at,
    'lightspeed' as channel
from {{ source('lightspeed', 'sales') }} as s,
    {{ json_elements('s.sale_lines') }} as t(l)
where s.sale_lines is not null
