{{ config(enabled=('sage_intacct' in var('channels'))) }}
{#- One row per Sales Invoice line; `amount` = quantity × price (ex tax) in the document currency,
    `amount_home` Intacct's base value; freight is the item FREIGHT. -#}
select
    'sage_intacct' as channel,
    recordno as line_id,
    dochdrno as record_no,
    line_no as line_number,
    itemid as item_id,
    itemname as description,
    unit,
    cast(quantity as decimal(18, 4)) as quantity,
    cast(trx_price as decimal(18, 4)) as unit_price,
    cast(trx_value as decimal(18, 2)) as amount,
    cast(value as decimal(18, 2)) as amount_home,
    cast(taxrate as decimal(18, 6)) as tax_rate,
    cast(trx_tax as decimal(18, 2)) as tax_amount,
    itemid = 'FREIGHT' as is_freight,
    upper(currency) as currency
from {{ source('sage_intacct', 'sodocument_entries') }}
