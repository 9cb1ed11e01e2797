{#-
    landing_files_not_counted(source_name): for the incremental stg_landing_files, the condition on raw rows
    of `source_name` that leaves out the landing files it has already counted. The counted files are looked
    up when the model compiles and written into the condition as constants: each landing file is a branch of
    the raw view with a constant _source_file, so the warehouse skips a counted file outright instead of
    reading its rows to filter them. Outside an incremental run, or before dbt executes, it is `1 = 1`.
-#}
{% macro landing_files_not_counted(source_name) -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set counted = run_query(
        "select distinct source_file from " ~ this ~ " where source_file is not null and source_name = '"
        ~ source_name ~ "' order by source_file"
    ).columns[0].values() -%}
    {%- if counted | length == 0 -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set literals = [] -%}
    {%- for file in counted -%}
        {%- do literals.append("'" ~ file | replace("'", "''") ~ "'") -%}
    {%- endfor -%}
    {{ return('_source_file not in (' ~ literals | join(', ') ~ ')') }}
{%- endmacro %}
