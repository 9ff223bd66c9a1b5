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
        {{ json_parse('pricing_summary', pricing) }} as p,
        {{ json_parse('payment_summary', payments) }} as ps,
        {{ json_parse('buyer', buyer) }} as b,
        {{ jlist(jindex(json_parse('fulfillment_start_instructions', ship), 1), 'shippingStep.shipTo.contactAddress') }} as ship_to,
        {{ json_parse('cancel_status', '{"cancelState": "VARCHAR", "cancelledDate": "VARCHAR"}') }} as cs,
        {{ json_parse('total_marketplace_fee', amt) }} as fee
    from {{ source('ebay', 'orders') }}
)

select
    order_id,
    legacy_order_id,
    marketplace_id,
    upper(coalesce({{ jget('p', 'total.convertedFromCurrency') }}, {{ jget('p', 'total.currency') }})) as currency,
    upper({{ jget('p', 'total.currency') }}) as home_currency,
    creation_date as ordered_at,
    last_modified_date as updated_at,
    cast({{ jget('cs', 'cancelledDate') }} as timestamptz) as cancelled_at,
    cancel_state,
    order_payment_status,
    order_fulfillment_status,
    {{ jget('b', 'username') }} as buyer_username,
    {{ jget('b', 'buyerRegistrationAddress.email') }} as customer_email,
    {{ jget('b', 'buyerRegistrationAddress.fullName') }} as customer_name,
    coalesce({{ jget('ship_to', 'countryCode') }}, {{ jget('b', 'buyerRegistrationAddress.contactAddress.countryCode') }}) as ship_country,
    coalesce({{ jget('ship_to', 'stateOrProvince') }}, {{ jget('b', 'buyerRegistrationAddress.contactAddress.stateOrProvince') }}) as ship_region,
    marketplace_id = 'EBAY_GB' as taxes_included,
    case marketplace_id when 'EBAY_GB' then 'uk_vat' when 'EBAY_US' then 'us_sales_tax' end as tax_treatment,
    cast(coalesce({{ jget('p', 'priceSubtotal.convertedFromValue') }}, {{ jget('p', 'priceSubtotal.value') }}) as decimal(18, 2)) as price_subtotal,
    -cast(coalesce({{ jget('p', 'priceDiscount.convertedFromValue') }}, {{ jget('p', 'priceDiscount.value') }}, '0') as decimal(18, 2)) as price_discount,
    cast(coalesce({{ jget('p', 'deliveryCost.convertedFromValue') }}, {{ jget('p', 'deliveryCost.value') }}, '0') as decimal(18, 2)) as delivery_cost,
    cast(coalesce({{ jget('p', 'tax.convertedFromValue') }}, {{ jget('p', 'tax.value') }}, '0') as decimal(18, 2)) as marketplace_tax,
    cast(coalesce({{ jget('p', 'total.convertedFromValue') }}, {{ jget('p', 'total.value') }}) as decimal(18, 2)) as total,
    cast({{ jget('p', 'priceSubtotal.value') }} as decimal(18, 2)) as price_subtotal_home,
    -cast(coalesce({{ jget('p', 'priceDiscount.value') }}, '0') as decimal(18, 2)) as price_discount_home,
    cast(coalesce({{ jget('p', 'deliveryCost.value') }}, '0') as decimal(18, 2)) as delivery_cost_home,
    cast(coalesce({{ jget('p', 'tax.value') }}, '0') as decimal(18, 2)) as marketplace_tax_home,
    cast({{ jget('p', 'total.value') }} as decimal(18, 2)) as total_home,
    cast(coalesce({{ jget('fee', 'convertedFromValue') }}, {{ jget('fee', 'value') }}) as decimal(18, 2)) as marketplace_fee,
    cast({{ jget('fee', 'value') }} as decimal(18, 2)) as marketplace_fee_home,
    {{ jget(jindex(jlist('ps', 'payments'), 1), 'paymentReferenceId') }} as payment_reference_id,
    cast({{ jget(jindex(jlist('ps', 'payments'), 1), 'paymentDate') }} as timestamptz) as paid_at,
    {{ jget(jindex(jlist('ps', 'payments'), 1), 'paymentStatus') }} as payment_status,
    cast(coalesce({{ jget(jindex(jlist('ps', 'payments'), 1), 'amount.convertedFromValue') }}, {{ jget(jindex(jlist('ps', 'payments'), 1), 'amount.value') }}) as decimal(18, 2)) as payment_amount,
    cast({{ jget(jindex(jlist('ps', 'payments'), 1), 'amount.value') }} as decimal(18, 2)) as payment_amount_home,
    'ebay' as channel
from parsed
