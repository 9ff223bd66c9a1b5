{#- An optional column of a relation: the column when the relation has it, else `default`.
    Channels may add optional columns to the int_* models (e.g. marketplace_tax_amount_home on
    int_orders); marts read them through this so they keep building before any channel does. -#}
{% macro optional_column(relation, column, default='cast(0 as decimal(18, 2))', alias=none, bare=false) -%}
    {%- set found = [] -%}
    {%- if execute -%}
        {%- for col in adapter.get_columns_in_relation(relation) -%}
            {%- if col.name | lower == column | lower -%}{%- do found.append(col.name) -%}{%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if found -%}coalesce({{ found[0] }}, {{ default }}){%- else -%}{{ default }}{%- endif -%}
    {%- if not bare %} as {{ alias or column }}{% endif -%}
{%- endmacro %}

{#- Tax jurisdiction of a document from its treatment (seed gl_tax_treatments): a fixed code
    (GB, AU), the buyer's country (EU-FR) or the buyer's state (US-NY). -#}
{% macro tax_jurisdiction(t, country, region) -%}
    case {{ t }}.jurisdiction_by
        when 'fixed' then {{ t }}.jurisdiction_code
        when 'country' then {{ t }}.jurisdiction_code || coalesce(upper({{ country }}), '??')
        when 'region' then {{ t }}.jurisdiction_code || coalesce(upper({{ region }}), '??')
    end
{%- endmacro %}

{#- Aging bucket of an open amount by days past due (current, 1-30, 31-60, 61-90, 90+);
    non-positive open amounts are unapplied credit. -#}
{% macro aging_bucket(open_amount, days_past_due) -%}
    case
        when {{ open_amount }} <= 0 then 'credit'
        when {{ days_past_due }} <= 0 then 'current'
        when {{ days_past_due }} <= 30 then '1-30'
        when {{ days_past_due }} <= 60 then '31-60'
        when {{ days_past_due }} <= 90 then '61-90'
        else '90+'
    end
{%- endmacro %}
