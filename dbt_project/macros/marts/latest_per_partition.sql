{#-
    latest_per_partition(relation, partition_by, order_by, columns, where=none): a select of one row per
    partition with the `columns` of its first row when ordered by `order_by` descending (nulls last), i.e.
    row_number() over (partition by ... order by ... desc) = 1. `order_by` must break every tie, so the row
    is well defined. Lists are column names of `relation` (a CTE name); `where` an optional filter.
    DuckDB takes each column with arg_max (a hash aggregate) instead of sorting every partition; other
    warehouses rank with a window.
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
    {#- A struct compares field by field; `key is not null` first puts nulls last, as the window does. #}
    {%- set sort_fields = [] -%}
    {%- for key in order_by -%}
        {%- do sort_fields.append(key ~ ' is not null') -%}
        {%- do sort_fields.append(key) -%}
    {%- endfor -%}
    select
        {{ partition_by | join(',\n        ') }},
        {%- for column in columns %}
        arg_max({{ column }}, row({{ sort_fields | join(', ') }})) as {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ relation }}
    {%- if where %}
    where {{ where }}
    {%- endif %}
    group by {{ partition_by | join(', ') }}
{%- endmacro %}
