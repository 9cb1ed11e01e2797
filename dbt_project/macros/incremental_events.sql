{#-
    loaded_after_this(): for an incremental model built from a model that stamps the rows it writes with
    loaded_at (base_shop__orders, base_web__events, base_esp__events), the condition on the upstream rows
    that this model has not processed yet: `loaded_at` later than the latest loaded_at this model holds
    (its own rows carry the start of the run that wrote them, which is after every upstream row it read
    then). Looked up when the model compiles and
    written in as a constant, so the warehouse skips the blocks of older rows. Outside an incremental run,
    or before dbt executes, or on an empty model, it is `1 = 1`.
-#}
{% macro loaded_after_this() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    {%- set latest = run_query('select max(loaded_at) from ' ~ this).columns[0].values()[0] -%}
    {%- if latest is none -%}
        {{ return('1 = 1') }}
    {%- endif -%}
    loaded_at > cast('{{ latest }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}
