{#- Money helpers.  DuckDB turns DECIMAL / DECIMAL into DOUBLE, so money never goes through "/":
    money_div rounds num / den to the cent (half away from zero) in exact integer arithmetic. -#}
{% macro money_div(num, den) -%}
    cast(
        sign(cast({{ num }} as decimal(38, 10)))
        * {{ int_div('abs(cast(cast(' ~ num ~ ' as decimal(38, 10)) * 10000000000 as ' ~ wide_int() ~ ')) * 200
            + cast(cast(' ~ den ~ ' as decimal(38, 10)) * 10000000000 as ' ~ wide_int() ~ ')',
                     '2 * cast(cast(' ~ den ~ ' as decimal(38, 10)) * 10000000000 as ' ~ wide_int() ~ ')') }}
        * cast(0.01 as decimal(3, 2))
    as decimal(18, 2))
{%- endmacro %}

{#- num / den (both positive) rounded half-up to `scale` decimals, as DECIMAL(18, scale), without
    passing through a float (a DECIMAL division is a DOUBLE on DuckDB): FX cross rates. -#}
{% macro rate_div(num, den, scale=10) -%}
    cast(
        {{ int_div('cast(cast(' ~ num ~ ' as decimal(38, 10)) * 10000000000 as ' ~ wide_int() ~ ') * ' ~ 2 * 10 ** scale
            ~ ' + cast(cast(' ~ den ~ ' as decimal(38, 10)) * 10000000000 as ' ~ wide_int() ~ ')',
                   '2 * cast(cast(' ~ den ~ ' as decimal(38, 10)) * 10000000000 as ' ~ wide_int() ~ ')') }}
        * cast({{ '0.' ~ '0' * (scale - 1) ~ '1' }} as decimal({{ scale + 1 }}, {{ scale }}))
    as decimal(18, {{ scale }}))
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

{#- The "as of" moment of the reports: the `as_of` var when given (unit tests, a manual run), else
    FINANCE_AS_OF, which the pipeline sets for each build (an environment variable rather than a
    var, so that dbt's saved parse stays valid from one run to the next), else the warehouse's now. -#}
{% macro as_of() -%}
    {%- set moment = var("as_of") or env_var("FINANCE_AS_OF", "") -%}
    {%- if moment -%} cast('{{ moment }}' as timestamptz) {%- else -%} current_timestamp {%- endif -%}
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
        {#- none of the channels switched on has this entity (FINANCE_SOURCES): an empty relation
            of the documented shape, so the unions and marts still build -#}
        {%- set shape = channel_entity_shape(entity) -%}
        {%- if not shape -%}
            {{ exceptions.raise_compiler_error("no channel provides '" ~ entity ~ "' (var 'channels' in dbt_project.yml)") }}
        {%- endif %}
    select {% for name, type in shape %}cast(null as {{ type }}) as {{ name }}{% if not loop.last %}, {% endif %}{% endfor %}
    where false
    {%- endif -%}
    {{ union_by_name(_channel_refs(providers, entity)) }}
{%- endmacro %}

{% macro _channel_refs(providers, entity) -%}
    {%- set refs = [] -%}
    {%- for channel in providers -%}{%- do refs.append(ref('int_' ~ channel ~ '__' ~ entity)) -%}{%- endfor -%}
    {{ return(refs) }}
{%- endmacro %}


{#- `select * from r1 union all by name select * from r2 ...`: columns matched by name, a column a
    relation lacks is null there. Postgres has no `by name`, so the columns are read from the built
    relations and spelled out, in order of first appearance, each cast to a type that holds every
    relation's values (as DuckDB's union picks: integer + bigint -> bigint, integer + numeric ->
    numeric, anything + text -> text). -#}
{% macro union_by_name(relations) -%}{{ return(adapter.dispatch('union_by_name')(relations)) }}{%- endmacro %}

{% macro default__union_by_name(relations) -%}
    {%- for r in relations %}
    select * from {{ r }}
    {%- if not loop.last %}
    union all by name
    {%- endif -%}
    {%- endfor %}
{%- endmacro %}

{% macro _common_type(data_types) -%}
    {%- set distinct = data_types | unique | list -%}
    {%- set kinds = [] -%}
    {%- for t in distinct -%}
        {%- if t in ('text', 'character varying') or t.startswith('character varying') -%}{%- do kinds.append('text') -%}
        {%- elif t.startswith('numeric') -%}{%- do kinds.append('numeric') -%}
        {%- elif t in ('smallint', 'integer', 'bigint') -%}{%- do kinds.append('int') -%}
        {%- else -%}{%- do kinds.append('other') -%}{%- endif -%}
    {%- endfor -%}
    {%- if distinct | length == 1 -%}{{ return(distinct[0]) }}
    {%- elif 'text' in kinds -%}{{ return('text') }}
    {%- elif 'other' in kinds -%}{{ return(distinct[0]) }}
    {%- elif 'numeric' in kinds -%}{{ return('numeric') }}
    {%- else -%}{{ return('bigint') }}{%- endif -%}
{%- endmacro %}

{% macro postgres__union_by_name(relations) -%}
    {%- if not execute -%}
        {%- for r in relations %} select * from {{ r }} {% if not loop.last %} union all {% endif %}{%- endfor -%}
    {%- else -%}
        {%- set names = [] -%}
        {%- set types = {} -%}
        {%- set per_relation = [] -%}
        {%- for r in relations -%}
            {%- set here = [] -%}
            {%- for c in adapter.get_columns_in_relation(r) -%}
                {%- do here.append(c.name) -%}
                {%- if c.name not in types -%}{%- do names.append(c.name) -%}{%- do types.update({c.name: [c.data_type]}) -%}
                {%- else -%}{%- do types[c.name].append(c.data_type) -%}{%- endif -%}
            {%- endfor -%}
            {%- do per_relation.append(here) -%}
        {%- endfor -%}
        {%- for n in names -%}{%- do types.update({n: _common_type(types[n])}) -%}{%- endfor -%}
        {%- for r in relations %}
            {%- set here = per_relation[loop.index0] %}
    select {% for n in names -%}
        {%- if n in here %}cast({{ adapter.quote(n) }} as {{ types[n] }}){% else %}cast(null as {{ types[n] }}){% endif %} as {{ adapter.quote(n) }}{% if not loop.last %}, {% endif %}
    {%- endfor %}
    from {{ r }}
            {%- if not loop.last %}
    union all
            {%- endif -%}
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}


{#- The channel model shapes of docs/architecture.md ("Channel kit"), for an entity no channel
    switched on provides. -#}
{% macro channel_entity_shape(entity) -%}
    {%- set money = 'decimal(18, 2)' -%}
    {%- set shapes = {
        'orders': [('channel', 'varchar'), ('order_id', 'varchar'), ('order_number', 'varchar'),
                   ('customer_id', 'varchar'), ('customer_email', 'varchar'), ('customer_company', 'varchar'),
                   ('customer_type', 'varchar'), ('currency', 'varchar'), ('ordered_at', 'timestamptz'),
                   ('updated_at', 'timestamptz'), ('cancelled_at', 'timestamptz'), ('platform_status', 'varchar'),
                   ('is_void', 'boolean'), ('taxes_included', 'boolean'), ('tax_treatment', 'varchar'),
                   ('country', 'varchar'), ('region', 'varchar'), ('terms_days', 'integer'), ('due_on', 'date'),
                   ('shipping_amount', money), ('shipping_amount_home', money), ('shipping_tax', money),
                   ('shipping_tax_home', money)],
        'order_lines': [('channel', 'varchar'), ('order_id', 'varchar'), ('line_id', 'varchar'), ('sku', 'varchar'),
                        ('title', 'varchar'), ('variant_title', 'varchar'), ('quantity', 'integer'),
                        ('unit_price', money), ('currency', 'varchar'), ('ordered_at', 'timestamptz'),
                        ('taxes_included', 'boolean'), ('customer_type', 'varchar'), ('tax_rate', 'decimal(9, 6)'),
                        ('list_amount', money), ('list_amount_home', money), ('discount', money),
                        ('discount_home', money), ('tax_amount', money), ('tax_amount_home', money)],
        'refunds': [('channel', 'varchar'), ('refund_id', 'varchar'), ('order_id', 'varchar'),
                    ('refunded_at', 'timestamptz'), ('currency', 'varchar'), ('goods_amount', money),
                    ('shipping_amount', money), ('tax_amount', money), ('goods_amount_home', money),
                    ('shipping_amount_home', money), ('tax_amount_home', money), ('cogs_reversal_home', money),
                    ('units', 'integer'), ('restock', 'boolean'), ('note', 'varchar')],
        'payments': [('channel', 'varchar'), ('processor', 'varchar'), ('payment_id', 'varchar'),
                     ('order_id', 'varchar'), ('status', 'varchar'), ('failure_code', 'varchar'),
                     ('currency', 'varchar'), ('amount', money), ('amount_home', money), ('fee_home', money),
                     ('attempted_at', 'timestamptz'), ('invoice_number', 'varchar'), ('refunded_amount', money),
                     ('is_disputed', 'boolean'), ('balance_transaction_id', 'varchar'), ('dispute_status', 'varchar')],
        'payouts': [('channel', 'varchar'), ('payout_id', 'varchar'), ('balance_transaction_id', 'varchar'),
                    ('currency', 'varchar'), ('amount', money), ('status', 'varchar'), ('payout_date', 'date'),
                    ('created_at', 'timestamptz')],
        'gift_cards': [('channel', 'varchar'), ('order_id', 'varchar'), ('line_id', 'varchar'),
                       ('currency', 'varchar'), ('sold_at', 'timestamptz'), ('amount', money), ('amount_home', money)],
        'balance_transactions': [('channel', 'varchar'), ('balance_transaction_id', 'varchar'),
                                 ('payout_id', 'varchar'), ('type', 'varchar'), ('category', 'varchar'),
                                 ('order_id', 'varchar'), ('source_id', 'varchar'), ('currency', 'varchar'),
                                 ('amount', money), ('fee', money), ('net', money), ('occurred_at', 'timestamptz')],
    } -%}
    {{ return(shapes.get(entity, [])) }}
{%- endmacro %}
