{#- The marketplace's share of the tax given back by each refund (int_refunds.marketplace_tax_amount
    / _home where a channel provides it, else 0): it leaves neither our tax payable nor our receivable. -#}
select
    channel,
    refund_id,
    cast({{ optional_column(ref('int_refunds'), 'marketplace_tax_amount', bare=true) }} as decimal(18, 2)) as marketplace_tax_amount,
    cast({{ optional_column(ref('int_refunds'), 'marketplace_tax_amount_home', bare=true) }} as decimal(18, 2)) as marketplace_tax_amount_home
from {{ ref('int_refunds') }}
