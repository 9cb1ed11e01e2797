{#-
    not_materialized(): the hint `with name as not_materialized() (...)` that asks the planner to inline a CTE
    into every query that reads it instead of computing it once into a temporary result.

    The base_ staging models read their parsed rows two or three times (the keys that repeat, then the
    rows with and without a repeated key). Held in memory, those rows are the width of the raw table: at a
    million customers, 13 GB of web events that DuckDB spilled to disk and read back, the dearest step of
    the whole staging build. Inlined, each reader scans the raw files again and keeps only the columns it
    needs, which costs a little more CPU and no memory. Only DuckDB and PostgreSQL (12+) accept the hint;
    elsewhere it renders nothing and the planner decides.
-#}
{% macro not_materialized() -%}
    {{ return(adapter.dispatch('not_materialized', 'personalize')()) }}
{%- endmacro %}

{% macro default__not_materialized() -%}
{%- endmacro %}

{% macro duckdb__not_materialized() -%}
    not materialized
{%- endmacro %}

{% macro postgres__not_materialized() -%}
    not materialized
{%- endmacro %}
