{{ config(enabled=('sage_intacct' in var('channels'))) }}
{#- One row per Sales Invoice.  Money in the document currency (trx) and in GBP at the document's
    own exchange rate (Intacct's base amounts).  A cancelled document is void. -#}
select
    'sage_intacct' as channel,
    recordno as record_no,
    docno as document_number,
    docid as document_id,
    state,
    state = 'Canceled' as is_void,
    auwhencreated as created_at,
    whenmodified as updated_at,
    whencreated as issued_on,
    whendue as due_on,
    custvendid as customer_id,
    nullif(custvendname, '') as customer_name,
    nullif(billto_email1, '') as customer_email,
    term_name as terms_name,
    {{ safe_cast(regex_extract('term_name', '(\d+)', 1), 'integer') }} as terms_days,
    ponumber as po_number,
    upper(currency) as currency,
    upper(basecurr) as base_currency,
    cast(exchrate as decimal(18, 6)) as exchange_rate,
    prrecordkey as ar_record_key,
    upper(shipto_mailaddress_countrycode) as country,
    nullif(shipto_mailaddress_state, '') as region,
    tax_treatment,
    cast(trx_subtotal as decimal(18, 2)) as subtotal,
    cast(trx_total as decimal(18, 2)) as total,
    cast(subtotal as decimal(18, 2)) as subtotal_home,
    cast(total as decimal(18, 2)) as total_home
from {{ source('sage_intacct', 'sodocuments') }}
