{#- The tax jurisdiction, regime and tax-payable account of every order, from its tax treatment
    (seed gl_tax_treatments).  A treatment missing from the seed falls back to the `_unmapped` row
    (a suspense liability), so no tax is ever dropped; a test warns about it. -#}
select
    o.channel,
    o.order_id,
    o.tax_treatment,
    coalesce(t.tax_treatment, '_unmapped') as mapped_treatment,
    coalesce(t.regime, u.regime) as regime,
    coalesce({{ tax_jurisdiction('t', 'o.country', 'o.region') }}, {{ tax_jurisdiction('u', 'o.country', 'o.region') }}) as jurisdiction,
    cast(coalesce(t.payable_account, u.payable_account) as varchar) as tax_account,
    coalesce(t.is_taxable, u.is_taxable) as is_taxable
from {{ ref('int_orders') }} as o
left join {{ ref('gl_tax_treatments') }} as t on t.tax_treatment = o.tax_treatment
cross join (select * from {{ ref('gl_tax_treatments') }} where tax_treatment = '_unmapped') as u
