{{ config(enabled=('ebay' in var('channels'))) }}
{#- One row per eBay order.  `currency` is what the buyer paid in (the listing site's currency);
    `_home` columns are the seller's GBP as eBay converted each amount.  eBay UK prices include
    VAT (the business owes it; eBay does not show it); eBay US prices exclude sales tax, which
    eBay collects and remits itself (`pricingSummary.tax`). -#}
{%- set amt = '{"value": "VARCHAR", "currency": "VARCHAR", "convertedFromValue": "VARCHAR", "convertedFromCurrency": "VARCHAR"}' -%}
{%- set pricing = '{"priceSubtotal": ' ~ amt ~ ', "priceDiscount": ' ~ amt ~ ', "deliveryCost": ' ~ amt ~ ', "tax": ' ~ amt ~ ', "total": ' ~ amt ~ '}' -%}
{%- set payments = '{"totalDueSeller": ' ~ amt ~ ', "payments": [{"paymentReferenceId": "VARCHAR", "paymentDate": "VARCHAR", "paymentStatus": "VARCHAR", "amount": ' ~ amt ~ '}]}' -%}
{%- set buyer = '{"username": "VARCHAR", "buyerRegistrationAddress": {"fullName": "VARCHAR", "email": "VARCHAR", "contactAddress": {"countryCode": "VARCHAR", "stateOrProvince": "VARCHAR"}}}' -%}
{%- set ship = '[{"shippingStep": {"shipTo": {"contactAddress": {"countryCode": "VARCHAR", "stateOrProvince": "VARCHAR"}}}}]' -%}

with parsed as (
    select
        *,
        from_json(pricing_summary, '{{ pricing }}') as p,
        from_json(payment_summary, '{{ payments }}') as ps,
        from_json(buyer, '{{ buyer }}') as b,
        from_json(fulfillment_start_instructions, '{{ ship }}')[1].shippingStep.shipTo.contactAddress as ship_to,
        from_json(cancel_status, '{"cancelState": "VARCHAR", "cancelledDate": "VARCHAR"}') as cs,
        from_json(total_marketplace_fee, '{{ amt }}') as fee
    from {{ source('ebay', 'orders') }}
)

select
    order_id,
    legacy_order_id,
    marketplace_id,
    upper(coalesce(p.total.convertedFromCurrency, p.total.currency)) as currency,
    upper(p.total.currency) as home_currency,
    creation_date as ordered_at,
    last_modified_date as updated_at,
    cast(cs.cancelledDate as timestamptz) as cancelled_at,
    cancel_state,
    order_payment_status,
    order_fulfillment_status,
    b.username as buyer_username,
    b.buyerRegistrationAddress.email as customer_email,
    b.buyerRegistrationAddress.fullName as customer_name,
    coalesce(ship_to.countryCode, b.buyerRegistrationAddress.contactAddress.countryCode) as ship_country,
    coalesce(ship_to.stateOrProvince, b.buyerRegistrationAddress.contactAddress.stateOrProvince) as ship_region,
    marketplace_id = 'EBAY_GB' as taxes_included,
    case marketplace_id when 'EBAY_GB' then 'uk_vat' when 'EBAY_US' then 'us_sales_tax' end as tax_treatment,
    cast(coalesce(p.priceSubtotal.convertedFromValue, p.priceSubtotal.value) as decimal(18, 2)) as price_subtotal,
    -cast(coalesce(p.priceDiscount.convertedFromValue, p.priceDiscount.value, '0') as decimal(18, 2)) as price_discount,
    cast(coalesce(p.deliveryCost.convertedFromValue, p.deliveryCost.value, '0') as decimal(18, 2)) as delivery_cost,
    cast(coalesce(p.tax.convertedFromValue, p.tax.value, '0') as decimal(18, 2)) as marketplace_tax,
    cast(coalesce(p.total.convertedFromValue, p.total.value) as decimal(18, 2)) as total,
    cast(p.priceSubtotal.value as decimal(18, 2)) as price_subtotal_home,
    -cast(coalesce(p.priceDiscount.value, '0') as decimal(18, 2)) as price_discount_home,
    cast(coalesce(p.deliveryCost.value, '0') as decimal(18, 2)) as delivery_cost_home,
    cast(coalesce(p.tax.value, '0') as decimal(18, 2)) as marketplace_tax_home,
    cast(p.total.value as decimal(18, 2)) as total_home,
    cast(coalesce(fee.convertedFromValue, fee.value) as decimal(18, 2)) as marketplace_fee,
    cast(fee.value as decimal(18, 2)) as marketplace_fee_home,
    ps.payments[1].paymentReferenceId as payment_reference_id,
    cast(ps.payments[1].paymentDate as timestamptz) as paid_at,
    ps.payments[1].paymentStatus as payment_status,
    cast(coalesce(ps.payments[1].amount.convertedFromValue, ps.payments[1].amount.value) as decimal(18, 2)) as payment_amount,
    cast(ps.payments[1].amount.value as decimal(18, 2)) as payment_amount_home,
    'ebay' as channel
from parsed
