{#-
    rows_where(relation, condition): `select * from relation where condition`, for a few rows of a large
    table whose condition reads only narrow columns (keys, flags, loaded_at).

    On DuckDB a filter that is not a plain comparison with a constant (a semi-join to a key set, an `or`
    over two columns) is applied after the scan, so every column of every row is read first: in an
    incremental run of the event models that was the wide read of tens of millions of rows to keep a few
    thousand, most of their run time and memory. The DuckDB version finds the rows' ids from the
    condition's own columns, then fetches the full rows by id, which reads only the blocks that hold them.
    Elsewhere, and for a CTE (a unit test's fixture, which has no row ids), it is the plain filter.
-#}
{% macro rows_where(relation, condition) -%}
    {{ return(adapter.dispatch('rows_where', 'personalize')(relation, condition)) }}
{%- endmacro %}

{% macro default__rows_where(relation, condition) -%}
    select * from {{ relation }} where {{ condition }}
{%- endmacro %}

{% macro duckdb__rows_where(relation, condition) -%}
    {%- if (relation | string).startswith('__dbt__cte__') -%}
        {{ default__rows_where(relation, condition) }}
    {%- else -%}
        select * from {{ relation }}
        where rowid in (select rowid from {{ relation }} where {{ condition }})
    {%- endif -%}
{%- endmacro %}
