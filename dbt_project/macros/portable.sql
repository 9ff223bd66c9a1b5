{#- SQL that differs between the two warehouses (FINANCE_WAREHOUSE=duckdb|postgres), dispatched on the
    adapter. Each `default__` is the DuckDB spelling, unchanged from the models that used it inline (so the
    embedded warehouse builds the exact SQL it always did); each `postgres__` says the same on PostgreSQL.

    Raw platform payloads keep their nested parts as JSON text (ingest/arrow.py), so the patterns are:
      rows of a JSON array ........ {{ json_rows('line_items', shape) }}           (in a select list)
      a field of such a row ....... {{ jget('li', 'price_set.shop_money.amount') }} (text on Postgres;
                                     typed by `shape` on DuckDB) - cast it as the model needs
      a nested array of a row ..... {{ jlist('li', 'tax_lines') }}
      sum over a nested array ..... {{ jsum(jlist('li', 'tax_lines'), 'price_set.shop_money.amount', 'decimal(18, 2)') }}
      a field of raw JSON text .... {{ json_text('metadata', '$.invoice_number') }}
      cast that may fail .......... {{ safe_cast('x', 'bigint') }}
-#}

{#- Rows of a JSON array held as text: DuckDB reads it as a list of structs of `shape` (its JSON
    schema spelling); Postgres as jsonb elements. A set-returning expression for a select list. -#}
{% macro json_rows(expr, shape) -%}{{ return(adapter.dispatch('json_rows')(expr, shape)) }}{%- endmacro %}
{% macro default__json_rows(expr, shape) -%}unnest(from_json({{ expr }}, '{{ shape }}')){%- endmacro %}
{% macro postgres__json_rows(expr, shape) -%}jsonb_array_elements(({{ expr }})::jsonb){%- endmacro %}

{#- A JSON value parsed once: DuckDB to the struct of `shape`, Postgres to jsonb. -#}
{% macro json_parse(expr, shape) -%}{{ return(adapter.dispatch('json_parse')(expr, shape)) }}{%- endmacro %}
{% macro default__json_parse(expr, shape) -%}from_json({{ expr }}, '{{ shape }}'){%- endmacro %}
{% macro postgres__json_parse(expr, shape) -%}({{ expr }})::jsonb{%- endmacro %}

{#- A scalar field (dotted path) of a row from json_rows / json_parse: typed on DuckDB, text on Postgres. -#}
{% macro jget(obj, path) -%}{{ return(adapter.dispatch('jget')(obj, path)) }}{%- endmacro %}
{% macro default__jget(obj, path) -%}{{ obj }}.{{ path }}{%- endmacro %}
{% macro postgres__jget(obj, path) -%}({{ obj }} #>> '{ {{- path.split('.') | join(',') -}} }'){%- endmacro %}

{#- A nested array (or object) of such a row, to hand to jsum / jlist_* or to unnest. -#}
{% macro jlist(obj, path) -%}{{ return(adapter.dispatch('jlist')(obj, path)) }}{%- endmacro %}
{% macro default__jlist(obj, path) -%}{{ obj }}.{{ path }}{%- endmacro %}
{% macro postgres__jlist(obj, path) -%}({{ obj }} #> '{ {{- path.split('.') | join(',') -}} }'){%- endmacro %}

{#- sum(cast(item.<path> as type)) over the elements of a nested array; null when it is empty. -#}
{% macro jsum(list_expr, path, type) -%}{{ return(adapter.dispatch('jsum')(list_expr, path, type)) }}{%- endmacro %}
{% macro default__jsum(list_expr, path, type) -%}
    list_sum([cast(x__.{{ path }} as {{ type }}) for x__ in {{ list_expr }}])
{%- endmacro %}
{% macro postgres__jsum(list_expr, path, type) -%}
    (select sum(cast(x__ #>> '{ {{- path.split('.') | join(',') -}} }' as {{ type }}))
     from jsonb_array_elements(coalesce({{ list_expr }}, '[]'::jsonb)) as x__)
{%- endmacro %}

{#- Number of elements of a nested array (0 when missing). -#}
{% macro jlen(list_expr) -%}{{ return(adapter.dispatch('jlen')(list_expr)) }}{%- endmacro %}
{% macro default__jlen(list_expr) -%}coalesce(len({{ list_expr }}), 0){%- endmacro %}
{% macro postgres__jlen(list_expr) -%}coalesce(jsonb_array_length({{ list_expr }}), 0){%- endmacro %}

{#- The JSON type of the warehouse, for casts. -#}
{% macro json_type() -%}{{ return(adapter.dispatch('json_type')()) }}{%- endmacro %}
{% macro default__json_type() -%}json{%- endmacro %}
{% macro postgres__json_type() -%}jsonb{%- endmacro %}

{#- cast(expr as type), null where the text does not read as that type (numbers and booleans). -#}
{% macro safe_cast(expr, type) -%}{{ return(adapter.dispatch('safe_cast')(expr, type)) }}{%- endmacro %}
{% macro default__safe_cast(expr, type) -%}try_cast({{ expr }} as {{ type }}){%- endmacro %}
{% macro postgres__safe_cast(expr, type) -%}
    {%- set t = type | lower -%}
    {%- if t in ('bigint', 'integer', 'int', 'smallint', 'hugeint', 'ubigint') -%}
    case when trim(cast({{ expr }} as text)) ~ '^[+-]?[0-9]+$' then cast(trim(cast({{ expr }} as text)) as bigint) end
    {%- elif t.startswith('decimal') or t.startswith('numeric') or t in ('double', 'float') -%}
    case when trim(cast({{ expr }} as text)) ~ '^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][+-]?[0-9]+)?$'
         then cast(trim(cast({{ expr }} as text)) as {{ type }}) end
    {%- elif t == 'boolean' -%}
    case when lower(trim(cast({{ expr }} as text))) in ('true', 't', '1') then true
         when lower(trim(cast({{ expr }} as text))) in ('false', 'f', '0') then false end
    {%- else -%}
    cast({{ expr }} as {{ type }})
    {%- endif -%}
{%- endmacro %}

{#- regexp_extract(text, pattern, group) -#}
{% macro regex_extract(expr, pattern, group=0) -%}{{ return(adapter.dispatch('regex_extract')(expr, pattern, group)) }}{%- endmacro %}
{% macro default__regex_extract(expr, pattern, group=0) -%}regexp_extract({{ expr }}, '{{ pattern }}', {{ group }}){%- endmacro %}
{% macro postgres__regex_extract(expr, pattern, group=0) -%}
    {%- if group == 0 -%}coalesce(substring({{ expr }} from '{{ pattern }}'), '')
    {%- else -%}coalesce((regexp_match({{ expr }}, '{{ pattern }}'))[{{ group }}], ''){%- endif -%}
{%- endmacro %}

{#- Exact integer type wide enough for money in 10^-10 units (DuckDB hugeint, Postgres numeric). -#}
{% macro wide_int() -%}{{ return(adapter.dispatch('wide_int')()) }}{%- endmacro %}
{% macro default__wide_int() -%}hugeint{%- endmacro %}
{% macro postgres__wide_int() -%}numeric(38, 0){%- endmacro %}

{#- Integer division truncating toward zero (operands are non-negative where it is used). -#}
{% macro int_div(a, b) -%}{{ return(adapter.dispatch('int_div')(a, b)) }}{%- endmacro %}
{% macro default__int_div(a, b) -%}({{ a }}) // ({{ b }}){%- endmacro %}
{% macro postgres__int_div(a, b) -%}div({{ a }}, {{ b }}){%- endmacro %}

{#- The JSON value (not its text) at a '$.a.b' path of JSON held as text or JSON. -#}
{% macro json_at(expr, path) -%}{{ return(adapter.dispatch('json_at')(expr, path)) }}{%- endmacro %}
{% macro default__json_at(expr, path) -%}{{ expr }} -> '{{ path }}'{%- endmacro %}
{% macro postgres__json_at(expr, path) -%}
    (({{ expr }})::jsonb #> '{ {{- path.lstrip('$').lstrip('.').split('.') | join(',') -}} }')
{%- endmacro %}

{#- union_channels(entity) plus optional columns a channel may give: `optional` is a list of
    (name, type); a column no channel gives is null of that type.  DuckDB: the channels' union
    `union all by name` an empty relation of the optional columns.  Postgres: the union (columns
    read from the built channel models) wrapped with the optional columns none of them has. -#}
{% macro union_channels_with(entity, optional) -%}{{ return(adapter.dispatch('union_channels_with')(entity, optional)) }}{%- endmacro %}

{% macro default__union_channels_with(entity, optional) -%}
    {{ union_channels(entity) }}
    union all by name
    select {% for name, type in optional %}cast(null as {{ type }}) as {{ name }}{% if not loop.last %}, {% endif %}{% endfor %}
    where false
{%- endmacro %}

{% macro postgres__union_channels_with(entity, optional) -%}
    {%- set present = [] -%}
    {%- if execute -%}
        {%- set providers = [] -%}
        {%- for channel, entities in var('channels').items() | sort -%}
            {%- if entity in entities -%}{%- do providers.append(channel) -%}{%- endif -%}
        {%- endfor -%}
        {%- if providers -%}
            {%- for channel in providers -%}
                {%- for c in adapter.get_columns_in_relation(ref('int_' ~ channel ~ '__' ~ entity)) -%}
                    {%- do present.append(c.name | lower) -%}
                {%- endfor -%}
            {%- endfor -%}
        {%- else -%}
            {%- for name, type in channel_entity_shape(entity) -%}{%- do present.append(name | lower) -%}{%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    select u__.*
    {%- for name, type in optional -%}
        {%- if name | lower not in present %}, cast(null as {{ type }}) as {{ name }}{% endif -%}
    {%- endfor %}
    from (
    {{ union_channels(entity) }}
    ) as u__
{%- endmacro %}

{#- `left join` of the one row of `relation` that is the latest (by `order_by`) among those meeting
    `condition` (equality and inequality conditions on `alias` and the left side): DuckDB's asof
    join; on Postgres a lateral subquery ordered by `order_by` that keeps its first row. -#}
{% macro asof_left_join(relation, alias, condition, order_by) -%}{{ return(adapter.dispatch('asof_left_join')(relation, alias, condition, order_by)) }}{%- endmacro %}

{% macro default__asof_left_join(relation, alias, condition, order_by) -%}
asof left join {{ relation }} as {{ alias }}
    on {{ condition }}
{%- endmacro %}

{% macro postgres__asof_left_join(relation, alias, condition, order_by) -%}
left join lateral (
    select * from {{ relation }} as {{ alias }}
    where {{ condition }}
    order by {{ order_by }}
    limit 1
) as {{ alias }} on true
{%- endmacro %}

{#- `alias.*` without the columns named in `excluded`: DuckDB's `* exclude (...)`; on Postgres the
    relation's other columns spelled out. -#}
{% macro star_exclude(relation, alias, excluded) -%}{{ return(adapter.dispatch('star_exclude')(relation, alias, excluded)) }}{%- endmacro %}

{% macro default__star_exclude(relation, alias, excluded) -%}
{{ alias }}.* exclude ({{ excluded | join(', ') }})
{%- endmacro %}

{% macro postgres__star_exclude(relation, alias, excluded) -%}
    {%- set skip = excluded | map('lower') | list -%}
    {%- set keep = [] -%}
    {%- if execute -%}
        {%- for c in adapter.get_columns_in_relation(relation) -%}
            {%- if c.name | lower not in skip -%}{%- do keep.append(alias ~ '.' ~ adapter.quote(c.name)) -%}{%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if keep -%}{{ keep | join(', ') }}{%- else -%}{{ alias }}.*{%- endif -%}
{%- endmacro %}

{#- The value of `arg` on the row with the largest `val` (rows with a null `val` ignored). -#}
{% macro arg_max_of(arg, val) -%}{{ return(adapter.dispatch('arg_max_of')(arg, val)) }}{%- endmacro %}
{% macro default__arg_max_of(arg, val) -%}arg_max({{ arg }}, {{ val }}){%- endmacro %}
{% macro postgres__arg_max_of(arg, val) -%}
    (array_agg({{ arg }} order by {{ val }} desc) filter (where {{ val }} is not null))[1]
{%- endmacro %}

{#- A date's calendar quarter as text 'YYYY-Qn'. -#}
{% macro year_quarter(d) -%}{{ return(adapter.dispatch('year_quarter')(d)) }}{%- endmacro %}
{% macro default__year_quarter(d) -%}strftime({{ d }}, '%Y') || '-Q' || cast(quarter({{ d }}) as varchar){%- endmacro %}
{% macro postgres__year_quarter(d) -%}to_char({{ d }}, 'YYYY') || '-Q' || to_char({{ d }}, 'Q'){%- endmacro %}

{#- The jsonb array `expr`, or an empty one when it is missing or JSON null (Postgres only). -#}
{% macro jarray(expr) -%}
    (case when jsonb_typeof({{ expr }}) = 'array' then {{ expr }} else '[]'::jsonb end)
{%- endmacro %}

{#- The elements of a nested list whose text fields equal the given values (`conds`: {field: 'value'}),
    still a list, to hand to jsum / jlen. -#}
{% macro jfilter(list_expr, conds) -%}{{ return(adapter.dispatch('jfilter')(list_expr, conds)) }}{%- endmacro %}
{% macro default__jfilter(list_expr, conds) -%}
    [x__ for x__ in {{ list_expr }} if {% for f, v in conds.items() %}x__.{{ f }} = '{{ v }}'{% if not loop.last %} and {% endif %}{% endfor %}]
{%- endmacro %}
{% macro postgres__jfilter(list_expr, conds) -%}
    (select coalesce(jsonb_agg(x__ order by n__), '[]'::jsonb)
     from jsonb_array_elements({{ jarray(list_expr) }}) with ordinality as f__(x__, n__)
     where {% for f, v in conds.items() %}x__ ->> '{{ f }}' = '{{ v }}'{% if not loop.last %} and {% endif %}{% endfor %})
{%- endmacro %}

{#- Sum over the elements of a list of the sums over each element's own list `inner` of
    cast(<path> as type), an element with an empty inner list counting 0; null when the outer list
    is empty (as DuckDB's list_sum). -#}
{% macro jsum_nested(list_expr, inner, path, type) -%}{{ return(adapter.dispatch('jsum_nested')(list_expr, inner, path, type)) }}{%- endmacro %}
{% macro default__jsum_nested(list_expr, inner, path, type) -%}
    list_sum([coalesce(list_sum([cast(y__.{{ path }} as {{ type }}) for y__ in x__.{{ inner }}]), 0) for x__ in {{ list_expr }}])
{%- endmacro %}
{% macro postgres__jsum_nested(list_expr, inner, path, type) -%}
    (select sum(coalesce((select sum(cast(y__ #>> '{ {{- path.split('.') | join(',') -}} }' as {{ type }}))
                          from jsonb_array_elements({{ jarray("x__ -> '" ~ inner ~ "'") }}) as y__), 0))
     from jsonb_array_elements({{ jarray(list_expr) }}) as x__)
{%- endmacro %}

{#- The text field `field` of the elements of a JSON array held as text, joined by `sep` in array
    order (nulls skipped); null when the text is null.  `shape` is the DuckDB from_json shape. -#}
{% macro jlist_join(expr, shape, field, sep) -%}{{ return(adapter.dispatch('jlist_join')(expr, shape, field, sep)) }}{%- endmacro %}
{% macro default__jlist_join(expr, shape, field, sep) -%}
    array_to_string([x__.{{ field }} for x__ in from_json({{ expr }}, '{{ shape }}')], '{{ sep }}')
{%- endmacro %}
{% macro postgres__jlist_join(expr, shape, field, sep) -%}
    case when ({{ expr }}) is not null then
        (select coalesce(string_agg(x__ ->> '{{ field }}', '{{ sep }}' order by n__), '')
         from jsonb_array_elements({{ jarray('(' ~ expr ~ ')::jsonb') }}) with ordinality as j__(x__, n__))
    end
{%- endmacro %}

{#- Whether the `sep`-separated text `expr` has the item `value` (exact match). -#}
{% macro split_has(expr, sep, value) -%}{{ return(adapter.dispatch('split_has')(expr, sep, value)) }}{%- endmacro %}
{% macro default__split_has(expr, sep, value) -%}
    list_contains(string_split({{ expr }}, '{{ sep }}'), '{{ value }}')
{%- endmacro %}
{% macro postgres__split_has(expr, sep, value) -%}
    ('{{ value }}' = any(string_to_array({{ expr }}, '{{ sep }}')))
{%- endmacro %}

{#- The elements of a JSON array (held as JSON text, or a JSON value) as a table of JSON values, for
    a FROM clause: `from t, {{ json_elements('t.lines') }} as x(line)`; then `line ->> 'field'`.
    No rows for SQL null or JSON null. -#}
{% macro json_elements(expr) -%}{{ return(adapter.dispatch('json_elements')(expr)) }}{%- endmacro %}
{% macro default__json_elements(expr) -%}unnest(from_json({{ expr }}, '["json"]')){%- endmacro %}
{% macro postgres__json_elements(expr) -%}
    jsonb_array_elements(coalesce(nullif(({{ expr }})::jsonb, 'null'::jsonb), '[]'::jsonb))
{%- endmacro %}

{#- An arbitrary value of the group (used where the value is the same on every row of it). -#}
{% macro any_val(expr) -%}{{ return(adapter.dispatch('any_val')(expr)) }}{%- endmacro %}
{% macro default__any_val(expr) -%}any_value({{ expr }}){%- endmacro %}
{% macro postgres__any_val(expr) -%}min({{ expr }}){%- endmacro %}

{#- Element i (1-based) of a list / JSON array. -#}
{% macro jindex(list_expr, i) -%}{{ return(adapter.dispatch('jindex')(list_expr, i)) }}{%- endmacro %}
{% macro default__jindex(list_expr, i) -%}{{ list_expr }}[{{ i }}]{%- endmacro %}
{% macro postgres__jindex(list_expr, i) -%}(({{ list_expr }}) -> {{ i - 1 }}){%- endmacro %}

{#- The 1-based positions of a parsed list's elements, a set-returning expression that runs
    alongside jlist_rows / json_rows over the same list in the same select list. -#}
{% macro jlist_positions(list_expr) -%}{{ return(adapter.dispatch('jlist_positions')(list_expr)) }}{%- endmacro %}
{% macro default__jlist_positions(list_expr) -%}generate_subscripts({{ list_expr }}, 1){%- endmacro %}
{% macro postgres__jlist_positions(list_expr) -%}
    generate_series(cast(1 as bigint), cast(jsonb_array_length({{ list_expr }}) as bigint))
{%- endmacro %}

{#- sum(cast(<elem> as type)) over a parsed list, where <elem> is an expression over the element
    `x__` (spelled with jget('x__', ...)); null when the list is empty or missing. -#}
{% macro jsum_of(list_expr, elem, type) -%}{{ return(adapter.dispatch('jsum_of')(list_expr, elem, type)) }}{%- endmacro %}
{% macro default__jsum_of(list_expr, elem, type) -%}
    list_sum([cast({{ elem }} as {{ type }}) for x__ in {{ list_expr }}])
{%- endmacro %}
{% macro postgres__jsum_of(list_expr, elem, type) -%}
    (select sum(cast({{ elem }} as {{ type }}))
     from jsonb_array_elements(coalesce({{ list_expr }}, '[]'::jsonb)) as x__)
{%- endmacro %}

{#- The `field` of the first element of a parsed list of objects whose `key_field` equals the
    text `key` (e.g. a WooCommerce meta_data entry), as text; null when there is none. -#}
{% macro jfind(list_expr, key_field, key, field) -%}{{ return(adapter.dispatch('jfind')(list_expr, key_field, key, field)) }}{%- endmacro %}
{% macro default__jfind(list_expr, key_field, key, field) -%}
    list_filter({{ list_expr }}, lambda m: m.{{ key_field }} = '{{ key }}')[1].{{ field }}
{%- endmacro %}
{% macro postgres__jfind(list_expr, key_field, key, field) -%}
    (select e__.m #>> '{ {{- field -}} }'
     from jsonb_array_elements(coalesce({{ list_expr }}, '[]'::jsonb)) with ordinality as e__(m, n)
     where e__.m ->> '{{ key_field }}' = '{{ key }}'
     order by e__.n limit 1)
{%- endmacro %}

{#- The 8-byte float type, for casts. -#}
{% macro double_type() -%}{{ return(adapter.dispatch('double_type')()) }}{%- endmacro %}
{% macro default__double_type() -%}double{%- endmacro %}
{% macro postgres__double_type() -%}double precision{%- endmacro %}

{#- sum(cast(x.<path> as type)) over the elements x of a nested array whose field <where_path> equals
    the text <where_value>; null when none does. -#}
{% macro jsum_where(list_expr, path, type, where_path, where_value) -%}
    {{ return(adapter.dispatch('jsum_where')(list_expr, path, type, where_path, where_value)) }}
{%- endmacro %}
{% macro default__jsum_where(list_expr, path, type, where_path, where_value) -%}
    list_sum([cast(x__.{{ path }} as {{ type }}) for x__ in {{ list_expr }} if x__.{{ where_path }} = '{{ where_value }}'])
{%- endmacro %}
{% macro postgres__jsum_where(list_expr, path, type, where_path, where_value) -%}
    (select sum(cast(x__ #>> '{ {{- path.split('.') | join(',') -}} }' as {{ type }}))
     from jsonb_array_elements(coalesce({{ list_expr }}, '[]'::jsonb)) as x__
     where x__ #>> '{ {{- where_path.split('.') | join(',') -}} }' = '{{ where_value }}')
{%- endmacro %}

{#- round(<double>, places) as DuckDB does it: the exact binary value rounded half away from zero
    (round(3038.455::double, 2) = 3038.45, the double being 3038.45499999...), a double. Postgres has no
    round(double precision, int), and its double -> numeric cast keeps only 15 digits (3038.455 exactly,
    which would round up), so the double is taken apart exactly: v = m / 2^k with m a bigint, then
    rounded in exact integer arithmetic. Values under 2^-7 in magnitude (never a money amount or a tax
    rate here) are rounded through numeric. -#}
{% macro round_double(expr, places=none) -%}{{ return(adapter.dispatch('round_double')(expr, places)) }}{%- endmacro %}
{% macro default__round_double(expr, places=none) -%}round({{ expr }}{% if places is not none %}, {{ places }}{% endif %}){%- endmacro %}
{% macro postgres__round_double(expr, places=none) -%}
    {%- set places = places or 0 -%}
    (select case
         when abs(v__) < 0.0078125 then cast(round(cast(v__ as numeric), {{ places }}) as double precision)
         else cast(sign(m__) * div(2 * abs(cast(m__ as numeric)) * {{ 10 ** places }} + (1::bigint << k__),
                                   2 * cast(1::bigint << k__ as numeric))
                   / {{ 10 ** places }} as double precision) end
     from (select v__, k__, cast(v__ * power(cast(2 as double precision), k__) as bigint) as m__
           from (select v__, least(greatest(53 - cast(floor(ln(greatest(abs(v__), 1e-300))
                                                            / ln(cast(2 as double precision))) as integer), 0), 61) as k__
                 from (select cast({{ expr }} as double precision) as v__) as a__) as b__) as c__)
{%- endmacro %}

{#- true when some element of the JSON array held as text `expr` has field `key` equal to the text
    `value` (DuckDB: list_contains over the '$[*].key' extraction; null when `expr` is null). -#}
{% macro json_array_has(expr, key, value) -%}{{ return(adapter.dispatch('json_array_has')(expr, key, value)) }}{%- endmacro %}
{% macro default__json_array_has(expr, key, value) -%}
    list_contains(json_extract_string({{ expr }}, '$[*].{{ key }}'), '{{ value }}')
{%- endmacro %}
{% macro postgres__json_array_has(expr, key, value) -%}
    (({{ expr }})::jsonb @> jsonb_build_array(jsonb_build_object('{{ key }}', '{{ value }}')))
{%- endmacro %}

{#- The whole of the text matches the regular expression. -#}
{% macro regex_full_match(expr, pattern) -%}{{ return(adapter.dispatch('regex_full_match')(expr, pattern)) }}{%- endmacro %}
{% macro default__regex_full_match(expr, pattern) -%}regexp_full_match({{ expr }}, '{{ pattern }}'){%- endmacro %}
{% macro postgres__regex_full_match(expr, pattern) -%}(({{ expr }}) ~ '^(?:{{ pattern }})$'){%- endmacro %}

{#- A string field of JSON held as text, by a '$.a.b' / '$[0].x' path. -#}
{% macro json_text(expr, path) -%}{{ return(adapter.dispatch('json_text')(expr, path)) }}{%- endmacro %}
{% macro default__json_text(expr, path) -%}json_extract_string({{ expr }}, '{{ path }}'){%- endmacro %}
{% macro postgres__json_text(expr, path) -%}
    {%- set parts = path.lstrip('$').replace('[', '.').replace(']', '').split('.') | reject('equalto', '') | list -%}
    (({{ expr }})::jsonb #>> '{ {{- parts | join(',') -}} }')
{%- endmacro %}

{#- Rows of a nested list already parsed (from jlist / json_parse): a set-returning expression for a
    select list, or a from-clause item (`with ordinality` may follow); a missing list gives no rows. -#}
{% macro jlist_rows(list_expr) -%}{{ return(adapter.dispatch('jlist_rows')(list_expr)) }}{%- endmacro %}
{% macro default__jlist_rows(list_expr) -%}unnest({{ list_expr }}){%- endmacro %}
{% macro postgres__jlist_rows(list_expr) -%}jsonb_array_elements({{ jarray(list_expr) }}){%- endmacro %}
