{#-
    source_or_empty(source_name, table_name, column_types): select the listed columns of a source, or an
    empty relation with the same typed columns when the source table does not exist yet.

    The score tables (source ml_scores) are written by the Python model layer after the marts are built,
    so the first `dbt build` on a fresh warehouse runs before any scoring. Reading them through this macro
    lets that build finish: every person is then unscored (tier and band 'unscored'), and the next build
    after scoring picks the scores up. `source()` is always called, so lineage (and the Dagster asset
    graph) still shows the dependency.

    column_types: a mapping of column name -> SQL type, e.g. {'person_id': dbt.type_string()}.
-#}
{% macro source_or_empty(source_name, table_name, column_types) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- set existing = none -%}
    {%- if execute -%}
        {%- set existing = adapter.get_relation(
            database=relation.database, schema=relation.schema, identifier=relation.identifier
        ) -%}
    {%- endif -%}
    {%- if existing is not none %}
    select
        {%- for column, column_type in column_types.items() %}
        cast({{ column }} as {{ column_type }}) as {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    from {{ relation }}
    {%- else %}
    -- {{ relation }} does not exist yet (nothing scored): an empty relation with its columns.
    select
        {%- for column, column_type in column_types.items() %}
        cast(null as {{ column_type }}) as {{ column }}{{ "," if not loop.last }}
        {%- endfor %}
    where 1 = 0
    {%- endif %}
{%- endmacro %}
