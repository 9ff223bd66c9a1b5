{#- Money helpers.  DuckDB turns DECIMAL / DECIMAL into DOUBLE, so money never goes through "/":
    money_div rounds num / den to the cent (half away from zero) in exact integer arithmetic. -#}
{% macro money_div(num, den) -%}
    cast(
        sign(cast({{ num }} as decimal(38, 10)))
        * ((abs(cast(cast({{ num }} as decimal(38, 10)) * 10000000000 as hugeint)) * 200
            + cast(cast({{ den }} as decimal(38, 10)) * 10000000000 as hugeint))
           // (2 * cast(cast({{ den }} as decimal(38, 10)) * 10000000000 as hugeint)))
        * cast(0.01 as decimal(3, 2))
    as decimal(18, 2))
{%- endmacro %}

{#- Integer minor units -> DECIMAL(18,2) major units.  Stripe's zero-decimal currencies stay whole
    (ISK, HUF and TWD are sent x100 by Stripe like two-decimal currencies, so they are not listed). -#}
{% macro minor_to_major(amount, currency) -%}
    cast(case when upper({{ currency }}) in ('BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG',
                                            'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF')
              then cast({{ amount }} as decimal(18, 2))
              else cast({{ amount }} as decimal(18, 0)) * cast(0.01 as decimal(3, 2)) end as decimal(18, 2))
{%- endmacro %}

{#- The business date (Europe/London by default) of a UTC timestamp: periods are cut there. -#}
{% macro business_date(ts) -%}
    cast(timezone('{{ var("business_timezone") }}', {{ ts }}) as date)
{%- endmacro %}

{% macro business_month(ts) -%}
    cast(date_trunc('month', timezone('{{ var("business_timezone") }}', {{ ts }})) as date)
{%- endmacro %}

{#- The "as of" moment of the reports. -#}
{% macro as_of() -%}
    {%- if var("as_of") -%} cast('{{ var("as_of") }}' as timestamptz) {%- else -%} current_timestamp {%- endif -%}
{%- endmacro %}

{% macro as_of_date() -%}
    {{ business_date(as_of()) }}
{%- endmacro %}

{#- The union of one entity over every channel that provides it: each channel contributes
    models/intermediate/channels/<channel>/int_<channel>__<entity>.sql in the shape documented in
    docs/architecture.md ("Channel kit"), and lists the entity under var('channels') in
    dbt_project.yml.  `union all by name` lets a channel leave optional columns out (they are null). -#}
{% macro union_channels(entity) -%}
    {%- set providers = [] -%}
    {%- for channel, entities in var('channels').items() | sort -%}
        {%- if entity in entities -%}{%- do providers.append(channel) -%}{%- endif -%}
    {%- endfor -%}
    {%- if not providers -%}
        {{ exceptions.raise_compiler_error("no channel provides '" ~ entity ~ "' (var 'channels' in dbt_project.yml)") }}
    {%- endif -%}
    {%- for channel in providers %}
    select * from {{ ref('int_' ~ channel ~ '__' ~ entity) }}
    {%- if not loop.last %}
    union all by name
    {%- endif -%}
    {%- endfor %}
{%- endmacro %}
