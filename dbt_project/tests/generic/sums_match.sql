{#- The total of a column equals the total of a column in another model (ties between marts). -#}
{% test sums_match(model, column_name, other_model, other_column, where_clause=none, other_where=none) %}
with a as (
    select coalesce(sum({{ column_name }}), 0) as total from {{ model }}
    {%- if where_clause %} where {{ where_clause }}{% endif %}
),
b as (
    select coalesce(sum({{ other_column }}), 0) as total from {{ other_model }}
    {%- if other_where %} where {{ other_where }}{% endif %}
)
select a.total as model_total, b.total as other_total
from a cross join b
where a.total <> b.total
{% endtest %}
