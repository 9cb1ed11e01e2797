{#-
    latest_per_partition(relation, partition_by, order_by, columns, where=none): a select of one row per
    partition with the `columns` of its first row when ordered by `order_by` descending (nulls last), i.e.
    row_number() over (partition by ... order by ... desc) = 1. `order_by` must break every tie, so the row
    is well defined; a single order_by column must not be null. Lists are column names of `relation` (a CTE
    name, or a parenthesised subquery with an alias); `where` an optional filter. DuckDB takes each column
    with arg_max_null (a hash aggregate that, unlike arg_max, keeps null values) instead of sorting every
    partition; other warehouses rank with a window.
-#}
{% macro latest_per_partition(relation, partition_by, order_by, columns, where=none) -%}
    {{ return(adapter.dispatch('latest_per_partition', 'personalize')(relation, partition_by, order_by, columns, where)) }}
{%- endmacro %}

{% macro default__latest_per_partition(relation, partition_by, order_by, columns, where) -%}
    select
        {{ (partition_by + columns) | join(',\n        ') }}
    from (
        select
            {{ (partition_by + columns) | join(',\n            ') }},
            row_number() over (
                partition by {{ partition_by | join(', ') }}
                order by {{ order_by | join(' desc, ') }} desc
            ) as recency_rank
        from {{ relation }}
        {%- if where %}
        where {{ where }}
        {%- endif %}
    ) as ranked
    where recency_rank = 1
{%- endmacro %}

{% macro duckdb__latest_per_partition(relation, partition_by, order_by, columns, where) -%}
    {#-
        One key is compared as is (arg_max_null never picks a row whose key is null: pass non-null keys).
        Several keys are compared as a struct, field by field, with `key is not null` before each key so that
        nulls sort last as in the window; a struct key is markedly slower, hence the single-key case.
    -#}
    {%- if order_by | length == 1 -%}
        {%- set sort_key = order_by[0] -%}
    {%- else -%}
        {%- set sort_fields = [] -%}
        {%- for key in order_by -%}
            {%- do sort_fields.append(key ~ ' is not null') -%}
            {%- do sort_fields.append(key) -%}
        {%- endfor -%}
        {%- set sort_key = 'row(' ~ sort_fields | join(', ') ~ ')' -%}
    {%- endif -%}
    select
        {{ partition_by | join(',\n        ') }},
        {%- for column in columns %}
        arg_max_null({{ column }}, {{ sort_key }}) as {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ relation }}
    {%- if where %}
    where {{ where }}
    {%- endif %}
    group by {{ partition_by | join(', ') }}
{%- endmacro %}
