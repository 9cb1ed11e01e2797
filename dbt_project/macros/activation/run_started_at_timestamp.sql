{#-
    run_started_at_timestamp(): the start of the current dbt invocation (UTC) as a timestamp literal, the
    same for every row and model of a run. Outside dbt (sqlfluff's templater) it renders current_timestamp.
-#}
{% macro run_started_at_timestamp() -%}
    {%- if run_started_at is defined -%}
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as {{ dbt.type_timestamp() }})
    {%- else -%}
        cast({{ dbt.current_timestamp() }} as {{ dbt.type_timestamp() }})
    {%- endif -%}
{%- endmacro %}
